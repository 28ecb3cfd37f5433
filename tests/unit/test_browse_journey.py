"""The journey of a page load assembled from recorded evidence (tests/fixtures/browse/): real
recordings of `lab browse --reload` on the default lab (shifted, as journey-topology.yaml), the
caches emptied first, and of a cold load with the authoritative server (ns-shop) stopped.
Pure: no engine, no browser. The expectations are read from the recordings' own raw parts
(packets, counters, log lines), not written down as numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.browse.journey import (DERIVED, NOT_REACHED, OBSERVED, STEPS, UNSEEN, Journey, JourneyStep, dns_role,
                                journeys)
from lab.browse.onpath import counters_from_rows, wire_from_data
from lab.browse.render import journey_lines
from lab.browse.report import to_html
from lab.browse.run import PageRecording, interpret
from lab.topology import load_topology

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "browse"


@pytest.fixture(scope="module")
def lab():
    return load_topology(FIXTURES / "journey-topology.yaml")


@pytest.fixture(scope="module")
def recording() -> PageRecording:
    return PageRecording(**json.loads((FIXTURES / "shop-journey.json").read_text()))


@pytest.fixture(scope="module")
def result(recording, lab):
    return interpret(recording, lab)


def steps(journey: Journey) -> dict[str, JourneyStep]:
    return {s.name: s for s in journey.steps}


def test_each_load_has_the_13_steps_in_order_and_the_count_is_computed(result):
    assert len(result.journeys) == 2
    for journey in result.journeys:
        assert tuple(s.name for s in journey.steps) == STEPS
        assert journey.observed == sum(s.source == OBSERVED for s in journey.steps)
        assert journey.summary.startswith(f"journey: {journey.observed} of 13 steps observed")
    assert [j.observed for j in result.journeys] == [13, 13]


def test_the_cold_load_asks_root_tld_and_authoritative_as_the_resolvers_packets_show(result, recording, lab):
    cold = steps(result.journeys[0])
    book = {str(a): i.name for i in lab.instances for a in i.all_addresses()}
    first_wall = result.visits[1].wall_start
    asked = {book.get(p["dst"]) for p in recording.packets
             if not p["response"] and p["src"] in {a for a, n in book.items() if n == "resolver"}
             and p["dport"] == 53 and p["time"] < first_wall}
    for role, node in (("root", "root-1"), ("TLD", "tld-test"), ("authoritative", "ns-shop")):
        assert node in asked and cold[role].nodes == [node] and cold[role].source == OBSERVED
        assert cold[role].ms is not None and not cold[role].broken
    assert "answer A " in cold["authoritative"].said and "referral to shop.test." in cold["TLD"].said
    assert cold["resolver cache"].said.startswith("did not hold www.shop.test")


def test_the_reload_says_root_tld_and_authoritative_were_not_asked(result, recording, lab):
    warm = steps(result.journeys[1])
    start = result.visits[1].wall_start
    resolver = {str(a) for a in lab.instance("resolver").all_addresses()}
    assert not [p for p in recording.packets if p["time"] >= start and p["dst"] in resolver]
    for role in ("resolver cache", "root", "TLD", "authoritative"):
        assert warm[role].said == "not asked: answered from the OS cache" and warm[role].source == OBSERVED
    assert warm["OS cache"].said == "dnsmasq answered www.shop.test from its cache"
    assert "answered from it (disk cache)" in warm["browser cache"].said


def test_routers_and_firewall_are_the_nodes_whose_own_capture_holds_the_syn(result, recording):
    wire = wire_from_data(recording.path["wire"])
    for journey, visit in zip(result.journeys, result.visits):
        laptop_syns = {p.seq for p in wire["laptop"] if p.syn and p.direction == "Out"
                       and visit.wall_start % 86400 <= p.time < (visit.wall_end + 1) % 86400}
        saw = {node for node, packets in wire.items() if node != "laptop"
               and any(p.syn and p.seq in laptop_syns and p.direction == "In" for p in packets)}
        found = steps(journey)
        assert set(found["routers"].nodes) | set(found["firewall"].nodes) == saw == {"home-router", "isp-router", "fw"}
        assert found["routers"].nodes == ["home-router", "isp-router"]   # the order the SYN reached them


def test_the_firewall_step_names_the_rule_whose_counter_rose(result, recording):
    rows = recording.path["counters"]["fw"]
    before, after = counters_from_rows(rows["before"]), counters_from_rows(rows["after"])
    rose = after[("FORWARD", "web-in")][0] - before.get(("FORWARD", "web-in"), (0, 0))[0]
    assert rose > 0
    said = steps(result.journeys[0])["firewall"].said
    assert f"rule web-in (allow) decided: its counter rose by {rose}" in said


def test_a_recording_without_the_path_says_so_and_counts_fewer(recording, lab):
    bare = interpret(replace(recording, path=None), lab)
    cold = steps(bare.journeys[0])
    assert cold["routers"].source == UNSEEN and cold["routers"].said == "the path was not recorded"
    assert cold["firewall"].source == UNSEEN
    # TCP and TLS then as the browser timed them, for the document's new connection
    document = bare.visits[0].entries[0]
    assert cold["TCP"].evidence == cold["TLS"].evidence == "Chromium's DevTools record"
    assert (cold["TCP"].ms, cold["TLS"].ms) == (document.phases["connect"], document.phases["ssl"])
    assert bare.journeys[0].observed == 13 - 2   # routers, firewall
    assert bare.journeys[0].summary.startswith("journey: 11 of 13 steps observed")


def test_a_stopped_authoritative_server_is_the_step_the_journey_broke_at(lab):
    found = PageRecording(**json.loads((FIXTURES / "shop-journey-no-auth.json").read_text()))
    result = interpret(found, lab)
    journey = result.journeys[0]
    auth = steps(journey)["authoritative"]
    ns_shop = {str(a) for a in lab.instance("ns-shop").all_addresses()}
    to_it = [p for p in found.packets if p["dst"] in ns_shop and not p["response"] and p["qname"] == "www.shop.test."]
    assert to_it and not [p for p in found.packets if p["src"] in ns_shop]
    assert journey.broken is auth and auth.nodes == ["ns-shop"] and f"asked {len(to_it)} time(s)" in auth.said
    assert steps(journey)["TCP"].source == NOT_REACHED
    assert journey.summary.startswith(f"journey: {journey.observed} of 13 steps observed; it broke at authoritative")
    assert journey.observed < 13


def test_an_address_url_marks_the_names_steps_derived(recording, lab):
    result = interpret(recording, lab)
    result.names = []
    again = journeys(result, lab, "198.18.50.10", [], recording.path)
    for role in ("OS cache", "resolver cache", "root", "TLD", "authoritative"):
        assert steps(again[0])[role].source == DERIVED


def test_dns_roles_come_from_the_topology(lab):
    assert [dns_role(lab, n) for n in ("root-1", "tld-test", "ns-shop", "lb", "nobody")] == \
        ["root", "TLD", "authoritative", None, None]


def test_the_journey_is_in_the_text_at_80_columns_the_json_and_the_html(result):
    lines = [str(line) for line in journey_lines(result.journeys[0], 80)]
    assert all(len(line) <= 80 for line in lines)
    assert lines[-1] == "journey: 13 of 13 steps observed"
    visits = result.as_dict()["visits"]
    assert [v["journey"]["observed"] for v in visits] == [13, 13]
    assert [s["name"] for s in visits[0]["journey"]["steps"]] == list(STEPS)
    page = to_html(result)
    assert page.count('class="journey"') == 2 and "journey: 13 of 13 steps observed" in page


def test_a_stopped_firewall_breaks_the_journey_at_the_router_whose_syn_never_left(lab):
    found = PageRecording(**json.loads((FIXTURES / "shop-journey-fw-stopped.json").read_text()))
    assert found.path["not_running"] == ["fw"] and "fw" not in found.path["wire"]
    journey = interpret(found, lab).journeys[0]
    wire = wire_from_data(found.path["wire"])
    first = next(p for p in wire["laptop"] if p.syn and p.direction == "Out")
    # isp-router's own capture: the SYN came in and never went out again
    at_isp = [p for p in wire["isp-router"] if p.syn and p.seq == first.seq]
    assert at_isp and {p.direction for p in at_isp} == {"In"}   # retransmitted, never forwarded
    assert journey.broken is steps(journey)["routers"]
    assert "isp-router: the SYN arrived and never left it" in steps(journey)["routers"].said
    firewall = steps(journey)["firewall"]
    assert firewall.nodes == ["fw"] and firewall.broken and "is not running" in firewall.said
    assert steps(journey)["TCP"].broken and steps(journey)["load balancer"].source == NOT_REACHED


def test_a_reply_missing_from_the_capture_is_said_not_taken_for_a_failure(recording, lab):
    """The resolver's tcpdump can lose a packet on a busy machine: with the browser connected
    (its record has the server's address), the step says the reply is missing, and no break."""
    result = interpret(recording, lab)
    resolver = {str(a) for a in lab.instance("resolver").all_addresses()}
    lost = [p for p in recording.packets if not (p["response"] and p["src"] in resolver)]
    again = journeys(result, lab, "www.shop.test", lost, recording.path)[0]
    step = steps(again)["resolver cache"]
    assert "its reply is missing from the capture" in step.said and not step.broken and again.broken is None
    assert step.said.startswith("did not hold www.shop.test: asked root-1")
