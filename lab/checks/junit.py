"""Check results as JUnit XML, the format CI systems display."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from lab.checks.run import CheckResult


def to_junit_xml(lab: str, results: list[CheckResult]) -> str:
    root = ET.Element("testsuites", name="lab check")
    suite = ET.SubElement(root, "testsuite", name=f"lab check {lab}", tests=str(len(results)),
                          failures=str(sum(not r.passed for r in results)), errors="0",
                          time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"lab.{lab}.{result.kind}", name=result.name,
                             time=f"{result.seconds:.3f}")
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=f"expected {result.expected}; saw {result.seen}")
            failure.text = f"from node {result.node}: expected {result.expected}; saw {result.seen}"
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
