"""Printing check results (a table, JSON, JUnit XML): shared by `lab check` and `lab up --check`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lab.backends import open_backend
from lab.backends.protocol import Backend
from lab.checks import run_checks, to_junit_xml
from lab.checks.junit import suites_to_junit_xml
from lab.cli import classroom
from lab.cli.common import out
from lab.layout import Record, table_or_stacked, wrapped
from lab.topology import Lab


def report(lab: Lab, title: str, results, junit: Path | None, as_json: bool) -> bool:
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


def check_lab(lab: Lab, junit: Path | None, as_json: bool, backend: Backend | None = None) -> bool:
    """Run, print and optionally save the checks; True when all passed. The engine is reached
    only when there are checks to run."""
    if not lab.spec.checks:
        out.print(f"{lab.file} has no checks (add a 'checks:' section, see docs/ci.md)", highlight=False)
        return True
    return report(lab, "checks", run_checks(backend or open_backend(), lab), junit, as_json)


def classroom_check(backend: Backend, file: Path, junit: Path | None, as_json: bool = False) -> bool:
    """Grade every running copy of file with the topology's checks: one line per copy (and each
    failed check), one JUnit testsuite per copy; True when every copy passed every check."""
    graded = classroom.check_copies(backend, file)
    if junit:
        junit.write_text(suites_to_junit_xml([(lab.name, classroom.describe(lab.name, lab.owner), results)
                                              for lab, results in graded]), encoding="utf-8")
    if as_json:
        click.echo(json.dumps({"file": str(file), "passed": all(r.passed for _, rs in graded for r in rs),
                               "copies": [{"lab": lab.name, "copy": lab.copy, "owner": lab.owner,
                                           "passed": all(r.passed for r in results),
                                           "checks": [r.as_dict() for r in results]}
                                          for lab, results in graded]}, indent=2))
    else:
        for lab, results in graded:
            failed = [r for r in results if not r.passed]
            mark = "[red]✗[/]" if failed else "[green]✓[/]"
            out.print(f"{mark} {classroom.describe(lab.name, lab.owner)}: {len(results) - len(failed)} of "
                      f"{len(results)} checks passed", highlight=False)
            for r in failed:
                for line in wrapped(f"FAIL {r.name}: expected {r.expected}; saw {r.seen}", out.width, indent=4):
                    out.print(line, soft_wrap=False)
    return all(r.passed for _, results in graded for r in results)
