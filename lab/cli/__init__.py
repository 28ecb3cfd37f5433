"""The `lab` command: thin. Parses arguments, calls the layers, renders output.

Only LabError is caught (with its exit code: 2 for a bad topology, 1 for a
runtime failure); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console

from lab.errors import LabError
from lab.topology import TopologyError, load_topology
from lab.topology.schema import topology_schema_text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TOPOLOGY_ARG = click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))


class OutputFile(click.Path):
    """A file to write (-o): its folder must exist, checked before any work (a usage error, exit 2)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        folder = Path(path).parent
        if not folder.is_dir():
            self.fail(f"the folder {folder} does not exist: create it first (mkdir -p {folder}) "
                      "or write somewhere else", param, ctx)
        return path


class LabGroup(click.Group):
    """Turns the project's own errors into a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LabError as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()   # the traceback, and still the documented exit code
            else:
                err.print(str(error), markup=False, highlight=False)
            sys.exit(error.exit_code)


@click.group(cls=LabGroup)
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="lab")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Run, trace and break a containerised mini-internet.

    FILE defaults to topology/default.yaml. Exit status: 0 ok, 1 runtime
    failure, 2 invalid topology or usage.
    """
    ctx.ensure_object(dict)["debug"] = debug


@main.command()
@TOPOLOGY_ARG
@click.option("--json", "as_json", is_flag=True,
              help="Print the resolved lab, or the problems ({file, line, column, path, message}), as JSON.")
@click.option("--deep", is_flag=True, help="Also run the rendered zones through BIND's named-checkzone "
              "(in a throwaway container of the dns image; needs the engine).")
def validate(file: Path | None, as_json: bool, deep: bool) -> None:
    """Check a topology file; print every problem with its line and column."""
    try:
        lab = load_topology(file)
        judged = check_zones_with_bind(lab) if deep else None
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


def check_zones_with_bind(lab) -> int:
    """Run the pre-flight (lab/preflight.py); raise TopologyError with BIND's refusals, at the
    topology lines that made them. Returns how many zones BIND accepted. `lab validate
    --deep` and `lab up` (before it changes anything) both run it."""
    from lab.plan.zones import all_zones
    from lab.preflight import bind_problems
    from lab.backends.docker.engine import connect
    from lab.backends.docker.images import ensure_images
    from lab.kinds import registry
    from lab.kinds.registry import AUTHORITATIVE_DNS
    from lab.topology.yaml_source import read_yaml
    client = connect()
    kind = registry.one_with_role(AUTHORITATIVE_DNS).name   # its image has named-checkzone
    image = ensure_images(client, [kind])[kind]
    problems = bind_problems(lab, read_yaml(lab.file), client, image)
    if problems:
        raise TopologyError(problems)
    return len(all_zones(lab))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the topology format (for editors)."""
    click.echo(topology_schema_text(), nl=False)


# Each module registers its commands on `main` when imported.
from lab.cli import (capture, check, dns, export, firewall, graph,  # noqa: E402,F401
                     impair, runtime, trace, web)

if __name__ == "__main__":  # pragma: no cover
    main()
