"""The `lab` command group, assembled here from the command modules (lab/cli/*.py).

Thin: parses arguments, calls the layers, renders output. Only LabError is caught
(with its exit code: 2 for a bad topology or usage, 1 for a runtime failure);
anything else is a bug and keeps its traceback. Command modules never import each
other nor this module: what they share is lab/cli/common.py.
"""

from __future__ import annotations

import sys
import traceback

import click

from lab.cli import browse, capture, check, dns, export, firewall, graph, impair, routing, runtime, trace, validate, web
from lab.cli.common import err
from lab.errors import LabError

COMMAND_MODULES = (validate, runtime, check, trace, dns, firewall, impair, routing, capture, graph, export, web,
                   browse)


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


for module in COMMAND_MODULES:
    for command in module.COMMANDS:
        main.add_command(command)
