"""`lab check`: the expectations written in a topology, checked against the running lab."""

from lab.checks.junit import to_junit_xml
from lab.checks.run import CheckResult, run_checks

__all__ = ["CheckResult", "run_checks", "to_junit_xml"]
