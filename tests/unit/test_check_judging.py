"""How check output is judged, and the messages that say what was expected and seen."""

import pytest

from lab.checks.probes import HTTP_MARK, expand_addresses, judge, probe_for
from lab.topology import load_topology
from lab.topology.model import Check


@pytest.fixture
def lab(root):
    return load_topology(root / "topology" / "default.yaml")


def check(**fields):
    return Check.model_validate(fields)


def test_resolve_expects_every_address_of_a_node_and_nothing_else(lab):
    c = check(name="www", resolve="www.shop.test", expect="lb")
    assert judge(lab, c, 0, "198.18.10.10\n").passed
    wrong = judge(lab, c, 0, "198.18.10.99\n")
    assert not wrong.passed and wrong.expected == "198.18.10.10" and wrong.seen == "198.18.10.99"
    replicas = check(name="api", resolve="api.shop.test", expect="app")
    assert judge(lab, replicas, 0, "198.18.20.13\n198.18.20.11\n198.18.20.12\n").passed


def test_http_reports_status_and_text(lab):
    c = check(name="page", http="https://www.shop.test/", contains="Shop")
    assert judge(lab, c, 0, f"<h1>Shop</h1>{HTTP_MARK}200").passed
    verdict = judge(lab, c, 0, f"<h1>Oops</h1>{HTTP_MARK}503")
    assert not verdict.passed and verdict.seen == "status 503 without 'Shop'"
    assert "no response" in judge(lab, c, 7, "curl: (7) Failed to connect").seen


def test_a_failed_http_check_names_curl_error_never_the_internal_marker(lab):
    c = check(name="page", http="https://www.shop.test/")
    # what curl -sS -w prints when nothing answered: its error on stderr, then the marker with 000
    refused = judge(lab, c, 7, "curl: (7) Failed to connect to www.shop.test port 443 after 2 ms: "
                               f"Couldn't connect to server{HTTP_MARK}000")
    assert not refused.passed and "lab-status" not in refused.seen
    assert refused.seen == ("no response (curl: (7) Failed to connect to www.shop.test port 443 after 2 ms: "
                            "Couldn't connect to server)")
    silent = judge(lab, c, 28, f"{HTTP_MARK}000")
    assert silent.seen == "no response (curl exit 28)"


def test_flow_and_sql_verdicts(lab):
    blocked = check(name="ssh", flow="lb:22", expect="blocked")
    assert judge(lab, blocked, 1, "").passed and not judge(lab, blocked, 0, "").passed
    count = check(name="rows", sql="select 3", on="db", expect=3)
    assert judge(lab, count, 0, "3\n").passed and not judge(lab, count, 0, "2\n").passed


def test_a_check_runs_from_the_first_client_unless_told(lab):
    assert probe_for(lab, check(name="x", reach="lb")).node == "laptop"
    assert probe_for(lab, check(name="x", reach="lb", **{"from": "app-2"})).node == "app-2"
    assert probe_for(lab, check(name="q", sql="select 1", on="db")).command[-1] == "select 1"


def test_braces_stand_for_node_addresses(lab):
    assert expand_addresses(lab, "http://{lb}/x{nope}") == "http://198.18.10.10/x{nope}"


def test_a_check_says_exactly_one_thing(root):
    with pytest.raises(ValueError):
        check(name="two", reach="lb", flow="lb:80")
