"""`lab graph`: the topology as a picture, from the file alone."""

from lab.graph.html import to_html
from lab.graph.model import Graph, build_graph
from lab.graph.text import to_dot, to_mermaid

__all__ = ["Graph", "build_graph", "to_dot", "to_html", "to_mermaid"]
