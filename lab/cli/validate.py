"""`lab validate` and `lab schema`: the topology file itself (the engine only for --deep)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lab.backends import open_backend
from lab.cli.common import TOPOLOGY_ARG, check_zones_with_bind, out
from lab.topology import TopologyError, load_topology
from lab.topology.schema import topology_schema_text


@click.command()
@TOPOLOGY_ARG
@click.option("--json", "as_json", is_flag=True,
              help="Print the resolved lab, or the problems ({file, line, column, path, message}), as JSON.")
@click.option("--deep", is_flag=True, help="Also run the rendered zones through BIND's named-checkzone "
              "(in a throwaway container of the dns image; needs the engine).")
def validate(file: Path | None, as_json: bool, deep: bool) -> None:
    """Check a topology file; print every problem with its line and column."""
    try:
        lab = load_topology(file)
        judged = check_zones_with_bind(lab, open_backend()) if deep else None
    except TopologyError as error:
        if not as_json:
            raise
        problems = [{"file": p.file, "line": p.line, "column": p.column, "path": p.path,
                     "message": p.message} for p in error.problems]
        click.echo(json.dumps({"valid": False, "problems": problems}, indent=2))
        sys.exit(error.exit_code)
    if as_json:
        data = {"lab": lab.name, "file": lab.file,
                "networks": {n: str(net.subnet) for n, net in lab.spec.networks.items()},
                "instances": [{"name": i.name, "node": i.node, "kind": i.kind,
                               "addresses": {n: str(a) for n, a in i.addresses.items()}}
                              for i in lab.instances]}
        click.echo(json.dumps(data, indent=2))
        return
    nodes = len(lab.spec.nodes)
    out.print(f"{lab.file}: valid: lab '{lab.name}', {len(lab.spec.networks)} networks, "
              f"{nodes} nodes ({len(lab.instances)} containers), {len(lab.spec.zones)} zones"
              + (f"; named-checkzone accepts all {judged} zones" if judged is not None else ""),
              highlight=False)


@click.command()
def schema() -> None:
    """Print the JSON Schema of the topology format (for editors)."""
    click.echo(topology_schema_text(), nl=False)


COMMANDS = [validate, schema]
