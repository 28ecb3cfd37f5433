"""`lab graph`: draw a topology (no running lab needed)."""

from __future__ import annotations

from pathlib import Path

import click

from lab.cli.common import TOPOLOGY_ARG, OutputFile, out
from lab.graph import build_graph, to_dot, to_html, to_mermaid
from lab.topology import load_topology

FORMATS = {"mermaid": to_mermaid, "dot": to_dot, "html": to_html}


@click.command()
@TOPOLOGY_ARG
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="mermaid", show_default=True)
@click.option("-o", "--output", type=OutputFile(),
              help="Write to this file instead of the terminal.")
def graph(file: Path | None, fmt: str, output: Path | None) -> None:
    """Draw a topology as Mermaid, Graphviz DOT or a self-contained HTML page."""
    text = FORMATS[fmt](build_graph(load_topology(file)))
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output} ({fmt})", highlight=False)


COMMANDS = [graph]
