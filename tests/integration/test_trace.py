"""`lab trace` on the default lab: the journey told from evidence, and told truthfully.

Truth checks: the upstream the trace names is the replica whose own log holds
the request; the firewall rule it names is the one whose counter rose; the DNS
servers it names are the ones that answered the resolver.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.runtime import inspect
from lab.runtime.dns import flush
from lab.trace.journey import trace_url

from .conftest import running_lab, topology_text

CLIENT_STEPS = ("dns", "tcp", "tls", "request", "transfer")


@pytest.fixture(scope="module")
def shop(engine, images, tmp_path_factory):
    text = topology_text("default", "it-trace")
    file = tmp_path_factory.mktemp("trace") / "shop.yaml"
    file.write_text(text)
    with running_lab(engine, text, str(file)) as lab:
        lab.file = file
        yield lab


def trace(engine, shop, url="https://www.shop.test/"):
    return trace_url(engine, shop.lab, url)


def test_a_cold_trace_walks_every_step_and_accounts_for_the_total(engine, shop):
    flush(engine, shop.name, "resolver")
    result = trace(engine, shop)
    assert result.ok and result.status == 200, result.summary
    kinds = [s.kind for s in result.steps]
    assert kinds == ["dns", "path", "firewall", "tcp", "tls", "request", "lb", "app", "db", "transfer"]
    dns = result.step("dns")
    asked = [c.node for c in dns.children]   # the resolver may ask one server more than once
    assert sorted(set(asked), key=asked.index) == ["root-1", "tld-test", "ns-shop"], asked
    assert all(c.ok for c in dns.children)   # every server named did answer
    assert "from the resolver's cache" not in dns.detail
    assert result.step("path").detail == "laptop → home-router → isp-router → fw → lb"
    # the client-side steps tile the measured total
    end = max(s.start_ms + s.duration_ms for s in result.steps if s.kind in CLIENT_STEPS)
    assert abs(end - result.total_ms) < 1.0
    assert result.step("tls").detail.startswith(("TLSv1.3", "TLSv1.2"))


def test_the_trace_names_the_replica_whose_log_holds_the_request(engine, shop):
    result = trace(engine, shop)
    served_by = result.step("app").node
    assert served_by in result.step("lb").detail
    log = inspect.log_text(engine, shop.name, served_by)
    assert result.trace_id in log
    others = [f"app-{i}" for i in (1, 2, 3) if f"app-{i}" != served_by]
    assert all(result.trace_id not in inspect.log_text(engine, shop.name, other) for other in others)


def test_the_rule_named_is_the_one_whose_counter_rose(engine, shop):
    firewall = trace(engine, shop).step("firewall")
    assert firewall.node == "fw" and "rule 'web-in' allowed" in firewall.detail
    assert "counter of rule 'web-in' rose by" in firewall.evidence[0]
    assert "rose by 0" not in firewall.evidence[0]


def test_two_traces_in_a_row_show_the_dns_cache(engine, shop):
    trace(engine, shop)
    second = trace(engine, shop).step("dns")
    assert "from the resolver's cache" in second.detail and second.children == []


def test_nxdomain_stops_at_dns_and_names_the_server(engine, shop):
    result = trace(engine, shop, "https://nothing.shop.test/")
    assert not result.ok and [s.kind for s in result.steps] == ["dns"]
    assert "NXDOMAIN from ns-shop" in result.summary


def test_a_blocked_port_stops_at_the_firewall_and_names_the_rule(engine, shop):
    result = trace(engine, shop, "http://db.shop.test:5432/")
    assert not result.ok and result.status is None
    assert "stopped at firewall on fw: rule 'default-deny' denied" in result.summary
    assert "rose by 0" not in result.step("firewall").evidence[0]


def test_a_dead_upstream_shows_the_retry_on_another(engine, shop):
    inspect.stop_node(engine, shop.name, "app-1")
    try:
        retried = None
        for _ in range(4):   # round robin: within a few requests one goes to app-1 first
            result = trace(engine, shop)
            assert result.ok, result.summary
            if result.step("lb").detail.startswith("retried"):
                retried = result
                break
        assert retried is not None, "no request was retried on another replica"
        assert "app-1" in retried.step("lb").detail and retried.step("app").node != "app-1"
    finally:
        inspect.start_node(engine, shop.name, "app-1")


def test_a_stopped_database_shows_the_503_and_where_it_came_from(engine, shop):
    inspect.stop_node(engine, shop.name, "db")
    try:
        result = trace(engine, shop, "https://www.shop.test/api/products")
        assert not result.ok and result.status == 503
        assert result.summary.startswith("HTTP 503; stopped at db on db")
        assert "database unavailable" in result.step("app").detail
    finally:
        inspect.start_node(engine, shop.name, "db")


def test_cli_json_is_versioned_and_html_is_written(engine, shop, tmp_path):
    page = tmp_path / "journey.html"
    result = CliRunner().invoke(main, ["trace", "https://www.shop.test/", "--lab", shop.name, "-f", str(shop.file),
                                       "--json", "--html", str(page)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["schema"] == "lab.trace/1" and data["status"] == 200
    assert "www.shop.test" in page.read_text()
