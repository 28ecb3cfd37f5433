"""`lab check` against a running lab: passes when the lab behaves, fails (and says why) when broken."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from click.testing import CliRunner

from lab.checks import run_checks, to_junit_xml
from lab.cli import main
from lab.backends.docker import inspect
from lab.backends.docker.backend import DockerBackend

from .conftest import topology_text


def test_minimal_lab_checks_pass_then_fail_when_broken(make_lab, engine, tmp_path):
    lab = make_lab(topology_text("minimal", "it-check"))
    lab.up()
    results = run_checks(DockerBackend(engine), lab.lab)
    assert [r.passed for r in results] == [True] * 4, results
    inspect.stop_node(engine, lab.name, "web")
    broken = {r.name: r for r in run_checks(DockerBackend(engine), lab.lab)}
    page = broken["the client gets an answer across the router"]
    assert not page.passed and page.expected.startswith("status 200") and "no response" in page.seen
    assert not broken["the app server is reachable"].passed
    assert broken["nothing listens on the app server's port 22"].passed
    xml = ET.fromstring(to_junit_xml(lab.name, list(broken.values())))
    cases = xml.findall(".//testcase")
    assert len(cases) == 4 and len(xml.findall(".//failure")) == 3


def test_cli_check_exit_status_and_junit(make_lab, engine, tmp_path):
    text = topology_text("minimal", "it-check-cli")
    text += "  - name: a wrong expectation\n    flow: web:8000\n    expect: blocked\n"
    lab = make_lab(text)
    lab.up()
    topology = tmp_path / "lab.yaml"
    topology.write_text(text)
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(main, ["check", str(topology), "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    assert "4 passed, 1 failed" in result.output
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure is not None and "expected web:8000/tcp blocked; saw allowed" in failure.get("message")


def test_default_lab_checks_pass_and_each_breakage_fails_its_check(engine, images):
    from lab.trace.resolver import flush, flush_stub

    from .conftest import LabUnderTest

    text = topology_text("default", "it-checks")
    lab = LabUnderTest(engine, text)
    try:
        lab.up()
        results = {r.name: r for r in run_checks(DockerBackend(engine), lab.lab)}
        assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]

        inspect.stop_node(engine, lab.name, "db")
        broken = {r.name: r for r in run_checks(DockerBackend(engine), lab.lab)}
        assert not broken["the shop has products in its database"].passed
        assert not broken["the app servers reach the database"].passed
        inspect.start_node(engine, lab.name, "db")

        lab.up(text.replace("www:         {A: lb}", "www:         {A: db}"))
        flush(DockerBackend(engine), lab.name, "resolver")
        assert flush_stub(DockerBackend(engine), lab.name, "laptop")   # its own DNS cache, as an OS has
        moved = {r.name: r for r in run_checks(DockerBackend(engine), lab.lab)}["the shop's name resolves to the load balancer"]
        db_address = str(lab.lab.instance("db").address_on("data"))
        assert not moved.passed and moved.seen == db_address

        deny = "      - {name: no-web,       from: any,  to: lb,       proto: tcp, ports: 443, action: deny}\n"
        lab.up(text.replace("      - {name: web-in,", deny + "      - {name: web-in,", 1))
        blocked = {r.name: r for r in run_checks(DockerBackend(engine), lab.lab)}["the web port is open to visitors"]
        assert not blocked.passed and blocked.expected.endswith("allowed") and blocked.seen.startswith("blocked")
    finally:
        lab.down()
