"""`lab trace URL`: the journey of one request through the lab, from real evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lab.cli import main, out
from lab.cli_runtime import LAB_OPTION, choose_lab
from lab.errors import LabError
from lab.runtime.engine import connect
from lab.topology import load_topology


@main.command()
@click.argument("url")
@click.option("--from", "source", metavar="NODE", help="Client node to run the request from (default: the first).")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lab's topology file (default: the running lab's own).")
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON (schema lab.trace/1).")
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with a sequence diagram and the waterfall.")
def trace(url: str, source: str | None, file: Path | None, lab_name: str | None, as_json: bool,
          html: Path | None) -> None:
    """Run URL from a client node and show each step with the container that did it and its time."""
    from lab.trace.journey import trace_url
    from lab.trace.render import waterfall

    client = connect()
    lab = _running_topology(client, file, lab_name)
    if source is not None and source not in lab.instance_names():
        raise LabError(f"lab '{lab.name}' has no node '{source}' (nodes: {', '.join(lab.instance_names())})")
    result = trace_url(client, lab, url, source)
    if html is not None:
        from lab.trace.html import to_html

        html.write_text(to_html(result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        out.print(waterfall(result))
        if html is not None:
            out.print(f"wrote {html}", highlight=False)
    if not result.ok:
        sys.exit(1)


def _running_topology(client, file: Path | None, lab_name: str | None):
    """The topology of the lab to trace: the file given, else the file the running lab was made from."""
    if file is not None:
        return load_topology(file)
    from lab.runtime.inspect import list_labs

    name = choose_lab(client, lab_name)
    entry = next((e for e in list_labs(client) if e["lab"] == name), None)
    if entry is None or not entry["file"] or not Path(entry["file"]).is_file():
        raise LabError(f"cannot find the topology file of lab '{name}': give it with --file")
    return load_topology(entry["file"])
