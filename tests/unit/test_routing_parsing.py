"""Reading FRR and the kernel: parsers fed with JSON captured from a running internet lab
(tests/fixtures/frr/, taken with vtysh and `ip -j route show`), and the route check's judge."""

from __future__ import annotations

import json
from pathlib import Path

from lab.checks.probes import judge, probe_for
from lab.routing.live import parse_frr_routes, parse_kernel_routes, parse_sessions
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "frr"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_frr_routes_carry_origin_next_hop_and_as_path():
    routes = parse_frr_routes(fixture("isp-a-edge-route.json"), fixture("isp-a-edge-bgp.json"))
    shop = [r for r in routes if r.prefix == "198.18.35.0/24"]
    assert [(r.origin, r.via, r.as_path, r.selected) for r in shop] == [("bgp", "100.64.32.2", (64700,), True)]
    origins = {r.origin for r in routes}
    assert {"connected", "ospf", "bgp"} <= origins
    assert all(r.as_path == () for r in routes if r.origin != "bgp")


def test_kernel_routes_of_a_static_node():
    routes = parse_kernel_routes(fixture("laptop-kernel-routes.json"))
    assert routes[0].origin == "connected" and routes[0].via is None
    assert {r.origin for r in routes[1:]} == {"static"}
    assert all(r.via == "100.64.31.1" for r in routes[1:])


def test_sessions_read_state_and_names():
    peers = {s.neighbor: s for s in parse_sessions(fixture("isp-a-border-summary.json"))}
    assert len(peers) == 4 and all(s.established for s in peers.values())
    assert peers["100.64.34.2"].name == "site-router (customer)" and peers["100.64.34.2"].remote_as == 64700


def internet_check(name_part: str):
    lab = load_topology(ROOT / "topology" / "internet.yaml")
    return lab, next(c for c in lab.spec.checks if name_part in c.name)


def test_route_check_asks_the_router_for_the_prefix():
    lab, check = internet_check("Transit prefers")
    probe = probe_for(lab, check)
    assert probe.node == "transit-router"
    assert probe.command == ["vtysh", "-c", "show bgp ipv4 unicast 198.18.35.0/24 json"]


def test_route_check_passes_on_the_expected_path_and_fails_on_another():
    lab, check = internet_check("Transit prefers")
    answer = (FIXTURES / "transit-shop-net.json").read_text()
    verdict = judge(lab, check, 0, answer)
    assert verdict.passed and verdict.seen.startswith("AS path 64601 64700")
    moved = answer.replace('"overall":true', '"overall":false', 1)
    # with no best path left, the check says so instead of passing
    assert judge(lab, check, 0, moved).seen == "no BGP route"
    other = lab.spec.checks[0].model_copy(update={"route": "shop-net", "from_": "transit-router",
                                                  "expect": ["isp-b", "shop"], "resolve": None})
    assert not judge(lab, other, 0, answer).passed


def test_route_check_reports_a_router_without_bgp():
    lab, check = internet_check("Transit prefers")
    verdict = judge(lab, check, 1, "Exiting: failed to connect to any daemons.\n")
    assert not verdict.passed and verdict.seen == "Exiting: failed to connect to any daemons."


def test_ipv6_routes_carry_family_ospfv3_and_the_as_path():
    routes = parse_frr_routes(fixture("isp-a-edge-route6.json"), fixture("isp-a-edge-bgp6.json"), 6)
    assert routes and all(r.family == 6 for r in routes)
    shop = [r for r in routes if r.prefix == "fd6c:6162:198:35::/64"]
    assert [(r.origin, r.via, r.as_path, r.selected) for r in shop] == [
        ("bgp", "fd6c:6162:64:32::2", (64700,), True)]
    assert {"connected", "ospfv3", "bgp"} <= {r.origin for r in routes}
    assert not any(r.prefix.startswith("fe80:") for r in routes)   # link-local left out
    assert routes[0].as_dict()["family"] == 6


def test_kernel_ipv6_routes_of_a_static_node():
    routes = parse_kernel_routes(fixture("laptop-kernel-routes6.json"), 6)
    assert all(r.family == 6 for r in routes)
    assert {r.origin for r in routes} == {"connected", "static"}
    assert all(r.via == "fd6c:6162:64:31::1" for r in routes if r.origin == "static")


def test_sessions_of_both_families():
    peers = parse_sessions(fixture("isp-a-border-summary-both.json"))
    assert sorted((s.family, s.name) for s in peers if s.family == 6) == sorted(
        (6, s.name) for s in peers if s.family == 4)
    six = {s.neighbor: s for s in peers if s.family == 6}
    assert six["fd6c:6162:64:34::2"].name == "site-router (customer)" and six["fd6c:6162:64:34::2"].established


def test_route_check_of_family_6_asks_the_ipv6_table_and_judges_it():
    lab = load_topology(ROOT / "topology" / "internet.yaml")
    check = next(c for c in lab.spec.checks if c.family == 6 and "Transit" in c.name)
    probe = probe_for(lab, check)
    assert probe.command == ["vtysh", "-c", "show bgp ipv6 unicast fd6c:6162:198:35::/64 json"]
    answer = (FIXTURES / "transit-shop-net6.json").read_text()
    verdict = judge(lab, check, 0, answer)
    assert verdict.passed and verdict.seen.startswith("AS path 64601 64700"), verdict
    assert not judge(lab, check, 0, answer.replace('"overall":true', '"overall":false', 1)).passed
