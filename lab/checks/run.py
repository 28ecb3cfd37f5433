"""Running every check of a topology against its running lab, in parallel."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lab.checks.probes import NoSourceNode, judge, probe_for
from lab.errors import LabError
from lab.interrupts import map_settled
from lab.backends.protocol import Backend
from lab.topology import Lab
from lab.topology.model import Check


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    node: str
    passed: bool
    expected: str
    seen: str
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_check(backend: Backend, lab: Lab, check: Check) -> CheckResult:
    """Gather the check's evidence (one command in one node), then judge it (pure)."""
    try:
        probe = probe_for(lab, check)
    except NoSourceNode as error:
        return CheckResult(check.name, check.kind, "-", False, "a node to run from", str(error), 0.0)
    try:
        result = backend.exec(lab.name, probe.node, probe.command)
    except LabError as error:  # e.g. the node is stopped: the check fails, the run goes on
        return CheckResult(check.name, check.kind, probe.node, False, "the check to run", str(error), 0.0)
    verdict = judge(lab, check, result.code, result.output)
    return CheckResult(check.name, check.kind, probe.node, verdict.passed, verdict.expected, verdict.seen,
                       result.seconds)


def run_checks(backend: Backend, lab: Lab, workers: int = 4) -> list[CheckResult]:
    return map_settled(lambda check: run_check(backend, lab, check), lab.spec.checks, workers)
