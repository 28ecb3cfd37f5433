"""Check results as JUnit XML, the format CI systems display."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.checks.run import CheckResult


def to_junit_xml(lab: str, results: list[CheckResult]) -> str:
    return suites_to_junit_xml([(lab, lab, results)])


def suites_to_junit_xml(suites: list[tuple[str, str, list[CheckResult]]]) -> str:
    """One testsuite per (lab, title, results): a classroom's copies graded in one file."""
    root = ET.Element("testsuites", name="lab check")
    for lab, title, results in suites:
        _suite(root, lab, title, results)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(root: ET.Element, lab: str, title: str, results: list[CheckResult]) -> None:
    suite = ET.SubElement(root, "testsuite", name=f"lab check {title}", tests=str(len(results)),
                          failures=str(sum(not r.passed for r in results)), errors="0",
                          time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"lab.{lab}.{result.kind}", name=result.name,
                             time=f"{result.seconds:.3f}")
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=f"expected {result.expected}; saw {result.seen}")
            failure.text = f"from node {result.node}: expected {result.expected}; saw {result.seen}"
