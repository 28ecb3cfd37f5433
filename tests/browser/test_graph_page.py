"""The topology picture renders in a real browser with every node and network visible."""

import re

import pytest

from lab.graph import build_graph, to_html
from lab.topology import load_topology


@pytest.mark.parametrize("name", ["default", "minimal"])
def test_graph_page_shows_every_node_and_network(root, tmp_path, render_page, name):
    lab = load_topology(root / "topology" / f"{name}.yaml")
    page = tmp_path / f"{name}.html"
    page.write_text(to_html(build_graph(lab)))
    shown = render_page(page)
    layout = re.search(r'data-layout="([^"]*)"', shown.dom)
    assert layout and layout.group(1) == "ok", layout.group(1) if layout else shown.dom[:500]
    names = re.search(r'data-shown="([^"]*)"', shown.dom).group(1).split(",")
    assert set(names) == set(lab.instance_names()) | set(lab.spec.networks)
    assert shown.screenshot.stat().st_size > 10_000  # a real picture, not a blank page
    assert "<script src" not in page.read_text() and "http" not in page.read_text().replace(
        "http://www.w3.org/2000/svg", "")  # self-contained: no external resources
