"""The failure taxonomy (lab.trace.outcome.classify) fed with evidence recorded from a running lab.

The curl runs in tests/fixtures/trace/ are real (recorded by running lab.trace.web.curl_command
in the default lab's nodes); the lb and app log lines are real lines of those nodes. Each test
asserts the outcome, the failing step, the node named and the reason, and that the duration
comes from curl's own clock (never a placeholder).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.trace.dns import DnsStep, DnsTrace
from lab.trace.model import DERIVED, OBSERVED
from lab.trace.outcome import Evidence, FirewallDecision, classify
from lab.trace.steps import client_steps, dns_step, server_steps
from lab.trace.web import parse_curl, upstream_attempts

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
NAMES = {"198.18.50.10": "lb", "198.18.60.11": "app-1", "198.18.60.12": "app-2", "198.18.60.13": "app-3",
         "198.18.70.10": "db"}
ALL_DOWN_LB = ('{"status":504,"upstream_addr":"198.18.60.13:8000, 198.18.60.12:8000, 198.18.60.11:8000",'
               '"upstream_status":"504, 504, 504","upstream_connect_time":"-, -, -",'
               '"upstream_response_time":"1.001, 1.001, 1.001","request_time":3.002}')
DB_DOWN_APP = ('{"node": "app-3", "method": "GET", "path": "/api/products", "status": 503, "app_ms": 3003.94, '
               '"db_ms": 0, "db_queries": 0, "db_error": "ConnectionTimeout: connection timeout expired"}')


def recorded(name: str):
    run = json.loads((RECORDED / f"{name}.json").read_text())
    return parse_curl(run["exit"], run["stdout"], run["stderr"])


def evidence(name: str, **fields) -> Evidence:
    curl = recorded(name)
    defaults = dict(client="laptop", host="www.shop.test", port=443, https=True, curl=curl,
                    address=curl.timings.get("remote_ip") or "198.18.50.10", target="lb", names=NAMES)
    defaults.update(fields)
    return Evidence(**defaults)


def test_a_good_request_is_ok_and_times_come_from_curl():
    curl = recorded("ok")
    assert curl.exit_code == 0 and curl.status == 200
    assert 0 < curl.lookup_ms < curl.connected_ms < curl.tls_done_ms < curl.total_ms
    outcome = classify(evidence("ok", app="app-2", app_line={"status": 200, "db_queries": 1}))
    assert (outcome.ok, outcome.category, outcome.step) == (True, "ok", None)
    assert curl.matched == "www.shop.test" and "www.shop.test" in curl.certificate_names


def test_an_untrusted_certificate_is_a_tls_failure_with_its_real_connect_time():
    curl = recorded("tls-untrusted")
    assert curl.ms("time_connect") == 0            # what curl reports after any error ...
    assert 0 < curl.connected_ms < curl.total_ms   # ... but it did connect: its verbose clock says when
    outcome = classify(evidence("tls-untrusted", client="app-1",
                                certificate_names=["mail.shop.test", "www.shop.test"]))
    assert (outcome.category, outcome.step, outcome.node) == ("tls.untrusted", "tls", "lb")
    assert "app-1 does not trust the certificate lb presented" in outcome.reason
    assert "unable to get local issuer certificate" in outcome.reason and "www.shop.test" in outcome.reason
    steps = client_steps(evidence("tls-untrusted", client="app-1"), outcome, None)
    assert [s.kind for s in steps] == ["tcp", "tls"] and steps[0].ok and not steps[1].ok
    assert steps[1].start_ms + steps[1].duration_ms == pytest.approx(curl.total_ms)


def test_a_certificate_for_other_names_is_a_name_mismatch():
    outcome = classify(evidence("tls-mismatch", host="other.test"))
    assert (outcome.category, outcome.step, outcome.node) == ("tls.name-mismatch", "tls", "lb")
    assert "is not for other.test" in outcome.reason


def test_a_reject_rule_is_a_quick_refusal_named_with_the_rule():
    curl = recorded("refused-by-rule")
    reject = FirewallDecision("fw", "ssh-in", "reject", 1, True)
    outcome = classify(evidence("refused-by-rule", port=22, https=False, firewalls=[reject]))
    assert (outcome.category, outcome.step, outcome.node) == ("tcp.refused", "firewall", "fw")
    assert "rule 'ssh-in' rejects tcp/22" in outcome.reason
    tcp = client_steps(evidence("refused-by-rule", port=22, https=False, firewalls=[reject]), outcome, None)[-1]
    assert tcp.kind == "tcp" and not tcp.ok
    assert tcp.duration_ms < 100 and tcp.start_ms + tcp.duration_ms == pytest.approx(curl.total_ms)


def test_a_refusal_without_a_rule_is_the_host_with_nothing_listening():
    outcome = classify(evidence("refused-by-host", client="app-1", port=9999, https=False,
                                address="198.18.60.12", target="app-2"))
    assert (outcome.category, outcome.step, outcome.node) == ("tcp.refused", "tcp", "app-2")
    assert "nothing listens on port 9999" in outcome.reason


def test_a_drop_rule_is_a_timeout_with_the_rule_and_the_real_wait():
    curl = recorded("dropped")
    drop = FirewallDecision("fw", "default-deny", "deny", 2, True)
    e = evidence("dropped", port=5432, https=False, address="198.18.70.10", target="db", firewalls=[drop])
    outcome = classify(e)
    assert (outcome.category, outcome.step, outcome.node) == ("tcp.dropped", "firewall", "fw")
    assert "rule 'default-deny' drops tcp/5432" in outcome.reason
    steps = client_steps(e, outcome, None)
    firewall, tcp = steps
    assert firewall.source == OBSERVED and not firewall.ok and not tcp.ok
    assert tcp.duration_ms == pytest.approx(curl.total_ms - curl.lookup_ms)   # curl's own clock
    # the same timeout with no rule counted: the peer never answered
    silent = classify(evidence("dropped", port=5432, https=False, address="198.18.70.10", target="db"))
    assert (silent.category, silent.node) == ("tcp.timeout", "db")


def test_a_firewall_whose_counter_did_not_rise_is_derived():
    e = evidence("ok", firewalls=[FirewallDecision("fw", "web-in", "allow", 0, False)])
    firewall = client_steps(e, classify(e), None)[0]
    assert firewall.source == DERIVED and not firewall.ok


def _dns(status: str, steps: list[DnsStep], answer=()) -> DnsTrace:
    return DnsTrace("nothing.shop.test", "A", "laptop", "resolver", "100.64.0.53", status, list(answer), 4.0, 3.1,
                    not steps, steps)


def test_nxdomain_names_the_server_that_said_so_or_the_cache():
    said = DnsStep("ns-shop", "198.18.0.13", "nothing.shop.test. A", "nxdomain", True, 0.4)
    outcome = classify(evidence("nxdomain", dns=_dns("NXDOMAIN", [said])))
    assert (outcome.category, outcome.step, outcome.node) == ("dns.nxdomain", "dns", "ns-shop")
    assert outcome.reason == "NXDOMAIN: ns-shop says nothing.shop.test does not exist"
    cached = classify(evidence("nxdomain", dns=_dns("NXDOMAIN", [])))
    assert cached.node == "resolver" and "from its cache" in cached.reason
    assert recorded("nxdomain").lookup_ms == recorded("nxdomain").total_ms > 0


def test_servfail_and_silence_are_told_apart():
    silent = DnsStep("tld-test", "198.18.0.12", "shop.test. A", "no reply", False, None)
    servfail = classify(evidence("nxdomain", dns=_dns("SERVFAIL", [silent])))
    assert (servfail.category, servfail.node) == ("dns.servfail", "resolver")
    assert "tld-test did not reply" in servfail.reason
    assert classify(evidence("nxdomain", dns=_dns("", []))).category == "dns.timeout"


def _http(status: int, lb_line: str | None, app: str | None = None, app_line: dict | None = None) -> Evidence:
    e = evidence("ok", lb="lb", app=app, app_line=app_line, database="db")
    e.curl.timings["http_code"] = status
    e.lb_line = json.loads(lb_line) if lb_line else None
    e.attempts = upstream_attempts(e.lb_line) if e.lb_line else []
    return e


def test_a_504_with_no_app_is_the_lb_own_answer_with_each_attempt():
    outcome = classify(_http(504, ALL_DOWN_LB))
    assert (outcome.category, outcome.step, outcome.node) == ("upstream.timeout", "lb", "lb")
    assert "lb answered 504 itself" in outcome.reason
    for app in ("app-1", "app-2", "app-3"):
        assert f"{app}: connect timed out after 1001 ms" in outcome.reason


def test_a_503_is_the_database_only_when_the_app_recorded_a_database_error():
    line = json.loads(DB_DOWN_APP)
    outcome = classify(_http(503, None, "app-3", line))
    assert (outcome.category, outcome.step, outcome.node) == ("db.unavailable", "db", "db")
    assert "app-3 could not use db: ConnectionTimeout" in outcome.reason
    line["db_error"] = None                      # the same 503 with no database error: the app's own
    outcome = classify(_http(503, None, "app-3", line))
    assert (outcome.category, outcome.step, outcome.node) == ("app.error", "app", "app-3")


def test_the_database_step_appears_only_when_sql_ran_for_this_trace():
    def kinds(app_line: dict) -> list[str]:
        e = _http(200, None, "app-2", app_line)
        request = client_steps(e, classify(e), None)[-2]
        return [s.kind for s in server_steps(e, classify(e), request)]

    assert kinds({"status": 200, "app_ms": 3.0, "db_ms": 0.0, "db_queries": 0}) == ["lb", "app"]
    assert kinds({"status": 200, "app_ms": 3.0, "db_ms": 0.7, "db_queries": 2}) == ["lb", "app", "db"]


def test_server_steps_lie_inside_the_request():
    e = _http(200, '{"status":200,"upstream_addr":"198.18.60.12:8000","upstream_status":"200",'
                   '"upstream_connect_time":"0.001","upstream_response_time":"0.009","request_time":5.0}',
              "app-2", {"status": 200, "app_ms": 9000.0, "db_ms": 1.0, "db_queries": 1})
    steps = client_steps(e, classify(e), None)
    request = next(s for s in steps if s.kind == "request")
    for step in server_steps(e, classify(e), request):   # 5 s and 9 s claimed: both clamped into the request
        assert request.start_ms <= step.start_ms
        assert step.start_ms + step.duration_ms <= request.start_ms + request.duration_ms + 1e-6


def test_client_steps_tile_curl_total():
    e = evidence("ok")
    steps = [s for s in client_steps(e, classify(e), None) if s.kind in ("tcp", "tls", "request", "transfer")]
    for before, after in zip(steps, steps[1:]):
        assert before.start_ms + before.duration_ms == pytest.approx(after.start_ms)
    assert steps[-1].start_ms + steps[-1].duration_ms == pytest.approx(e.curl.total_ms)


def test_a_redirect_is_ok_and_names_where_it_leads():
    curl = recorded("redirect")
    assert curl.status == 301 and curl.timings["redirect_url"] == "https://www.shop.test/"
    assert classify(evidence("redirect", https=False, port=80)).ok


def test_a_group_name_in_the_lb_log_means_no_server_was_left_to_try():
    line = ('{"status":502,"upstream_addr":"198.18.60.13:8000, 198.18.60.12:8000, lab_upstream",'
            '"upstream_status":"504, 504, 502","upstream_connect_time":"-, -, -",'
            '"upstream_response_time":"1.001, 1.001, 0.000","request_time":2.002}')
    outcome = classify(_http(502, line))
    assert (outcome.category, outcome.step, outcome.node) == ("upstream.timeout", "lb", "lb")
    assert "lab_upstream: no server left to try" in outcome.reason


def test_a_lookup_whose_answer_the_capture_missed_is_not_a_failure_when_curl_connected():
    """The resolver's capture can miss a lookup (a cache that answered but did not log it yet);
    curl connecting to the address is the observation that the lookup worked."""
    missed = classify(evidence("ok", dns=_dns("", [])))
    assert missed.ok and missed.category == "ok"
    step = dns_step(_dns("", []), 4.0, missed)
    assert step.ok and "no answer to it was seen" in step.detail and "curl connected" in step.detail
    # without a connection, silence is still a timeout
    assert classify(evidence("nxdomain", dns=_dns("", []))).category == "dns.timeout"
