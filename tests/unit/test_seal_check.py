"""Judging `lab check --seal` from recorded probe output (lab/checks/seal.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.checks.seal import judge_engine_dns, judge_gateways, judge_root_hints, judge_route
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shop():
    return load_topology(ROOT / "topology" / "default.yaml")


def test_a_route_is_fine_when_there_is_none_or_it_leads_to_a_lab_router(shop):
    assert judge_route(shop, "root-1", "RTNETLINK answers: Network is unreachable").passed
    home = shop.instance("home-router").address_on("home")
    verdict = judge_route(shop, "laptop", f"192.0.2.1 via {home} dev eth0 src 100.64.10.10 uid 0\n    cache")
    assert verdict.passed and verdict.seen == f"via {home} (home-router)"


def test_a_route_via_the_engines_gateway_or_a_stranger_fails_naming_it(shop):
    gateway = shop.gateways["data"]
    verdict = judge_route(shop, "db", f"192.0.2.1 via {gateway} dev eth0 src 198.18.30.10 uid 0")
    assert not verdict.passed and verdict.node == "db" and "engine's gateway" in verdict.seen
    assert not judge_route(shop, "db", "192.0.2.1 via 10.9.9.9 dev eth0").passed
    assert not judge_route(shop, "db", "192.0.2.1 dev eth0 src 198.18.30.10").passed   # on-link: no router at all


def test_a_gateway_that_answers_in_any_way_fails():
    silent = {"198.18.30.254": {"tcp/22": "blocked: Operation not permitted", "udp/53": "silent"}}
    assert judge_gateways("db", silent).passed
    for answer in ("open", "refused"):
        verdict = judge_gateways("db", {"198.18.30.254": {"tcp/22": answer, "udp/53": "silent"}})
        assert not verdict.passed and f"198.18.30.254 tcp/22 {answer}" in verdict.seen
    assert not judge_gateways("db", {"198.18.30.254": {"udp/53": "answered"}}).passed


def test_the_engines_dns_must_not_answer():
    assert judge_engine_dns("app-1", "blocked: Operation not permitted").passed
    assert judge_engine_dns("app-1", "refused").passed     # nothing listens behind 127.0.0.11:53
    assert not judge_engine_dns("app-1", "answered").passed


def test_a_resolver_starts_only_from_the_labs_roots(shop):
    root = shop.instance("root-1").address_on("backbone")
    hints = f"; the lab's root servers\n.\t3600000\tIN\tNS\troot-1.\nroot-1.\t3600000\tIN\tA\t{root}\n"
    assert judge_root_hints(shop, "resolver", hints).passed
    outside = hints + "a.root-servers.net.\t3600000\tIN\tA\t198.41.0.4\n"
    verdict = judge_root_hints(shop, "resolver", outside)
    assert not verdict.passed and "198.41.0.4" in verdict.seen
    assert not judge_root_hints(shop, "resolver", "").passed
