"""`lab check`: run the topology's expectations against its running lab (for CI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lab.checks import run_checks, to_junit_xml
from lab.checks.seal import run_seal_check
from lab.cli import TOPOLOGY_ARG, main, out
from lab.backends.docker.engine import connect
from lab.layout import Record, table_or_stacked, wrapped
from lab.topology import Lab, load_topology

JUNIT_OPTION = click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
                            help="Also write the results as JUnit XML to this file.")


def _report(lab: Lab, title: str, results, junit: Path | None, as_json: bool) -> bool:
    """Print (and optionally save) results; True when all passed."""
    if junit:
        junit.write_text(to_junit_xml(lab.name, results), encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"lab": lab.name, "passed": all(r.passed for r in results),
                               "checks": [r.as_dict() for r in results]}, indent=2))
    else:
        for line in _results_lines(f"lab {lab.name}: {title}", results, out.width):
            out.print(line, soft_wrap=False)
        failed = sum(not r.passed for r in results)
        out.print(f"{len(results) - failed} passed, {failed} failed", highlight=False)
    return all(r.passed for r in results)


CHECK_COLUMNS = ["result", "check", "kind", "from", "expected", "seen"]


def _results_lines(title: str, results, width: int) -> list:
    """One line per check when the table fits the width, else one block per check (nothing cut)."""
    marks = ["pass" if r.passed else "FAIL" for r in results]
    styles = ["green" if r.passed else "red" for r in results]
    cells = [[mark, r.name, r.kind, r.node, r.expected, r.seen] for mark, r in zip(marks, results)]
    records = [Record(f"{mark}  {r.name}", [("kind", r.kind), ("from", r.node), ("expected", r.expected),
                                             ("seen", r.seen)], style)
               for mark, r, style in zip(marks, results, styles)]
    return wrapped(title, width, style="bold") + table_or_stacked(CHECK_COLUMNS, cells, records, width,
                                                                  styles=styles)


def check_lab(lab: Lab, junit: Path | None, as_json: bool) -> bool:
    """Run, print and optionally save the checks; True when all passed."""
    if not lab.spec.checks:
        out.print(f"{lab.file} has no checks (add a 'checks:' section, see docs/ci.md)", highlight=False)
        return True
    return _report(lab, "checks", run_checks(connect(), lab), junit, as_json)


@main.command()
@TOPOLOGY_ARG
@JUNIT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--seal", is_flag=True,
              help="Instead, prove from every node that the lab is sealed (docs/firewall.md).")
def check(file: Path | None, junit: Path | None, as_json: bool, seal: bool) -> None:
    """Check the running lab against the expectations in its topology; exit 1 if any fails."""
    lab = load_topology(file)
    if seal:
        passed = _report(lab, "the seal", run_seal_check(connect(), lab), junit, as_json)
    else:
        passed = check_lab(lab, junit, as_json)
    if not passed:
        sys.exit(1)
