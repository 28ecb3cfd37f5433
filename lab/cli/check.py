"""`lab check`: run the topology's expectations against its running lab (for CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.backends import open_backend
from lab.checks.seal import run_seal_check
from lab.cli.check_report import check_lab, classroom_check, report
from lab.cli.common import TOPOLOGY_ARG
from lab.topology import load_topology

JUNIT_OPTION = click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
                            help="Also write the results as JUnit XML to this file.")


@click.command()
@TOPOLOGY_ARG
@JUNIT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--seal", is_flag=True,
              help="Instead, prove from every node that the lab is sealed (docs/firewall.md).")
@click.option("--all-copies", is_flag=True, help="Grade every classroom copy of FILE (lab up --copies).")
def check(file: Path | None, junit: Path | None, as_json: bool, seal: bool, all_copies: bool) -> None:
    """Check the running lab against the expectations in its topology; exit 1 if any fails."""
    lab = load_topology(file)
    if all_copies:
        if not classroom_check(open_backend(), Path(lab.file), junit, as_json):
            sys.exit(1)
        return
    if seal:
        passed = report(lab, "the seal", run_seal_check(open_backend(), lab), junit, as_json)
    else:
        passed = check_lab(lab, junit, as_json)
    if not passed:
        sys.exit(1)


COMMANDS = [check]
