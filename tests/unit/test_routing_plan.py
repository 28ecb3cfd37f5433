"""Autonomous systems in the plan: FRR configs rendered from the topology, the export rules
(customer / peer / provider), prepending and local preference, and the file's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.graph.model import build_graph
from lab.plan import make_plan
from lab.plan.frr import CONFIG_FILE, DAEMONS_FILE, NOT_FOR_UPSTREAM, RELATION_COMMUNITY
from lab.topology import TopologyError, load_text, load_topology
from lab.topology.autonomy import CUSTOMER, INTERNAL, PEER, PROVIDER, expected_as_path, sessions
from lab.topology.routes import graph_routes, graph_routes6, routes_for

ROOT = Path(__file__).resolve().parents[2]
INTERNET = ROOT / "topology" / "internet.yaml"


@pytest.fixture(scope="module")
def internet():
    return load_topology(INTERNET)


@pytest.fixture(scope="module")
def plan(internet):
    return make_plan(internet)


def config(plan, node: str) -> str:
    return plan.container(node).files[CONFIG_FILE]


def block(text: str, heading: str) -> list[str]:
    """The lines of one top-level FRR block (heading up to the next '!')."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = lines.index("!", start)
    return lines[start:end]


def test_only_routers_in_an_as_run_frr(plan):
    with_frr = {c.name for c in plan.containers if CONFIG_FILE in c.files}
    assert with_frr == {"isp-a-edge", "isp-a-border", "isp-b-router", "transit-router", "site-router", "ixp-rs"}
    for container in plan.containers:
        assert ("SYS_ADMIN" in container.capabilities) == (container.name in with_frr)


def test_frr_routers_get_no_static_routes_and_hosts_keep_theirs(internet, plan):
    assert plan.container("site-router").files["routes"] == ""
    assert routes_for(internet, internet.instance("site-router")) == []
    assert "198.18.35.0/24 via 100.64.31.1" in plan.container("laptop").files["routes"]
    assert plan.container("home-router").files["routes"].strip()   # no AS: static, like a home box


def test_default_lab_is_routed_statically_as_before():
    lab = load_topology(ROOT / "topology" / "default.yaml")
    plan = make_plan(lab)
    assert not any(CONFIG_FILE in c.files for c in plan.containers)
    for instance in lab.instances:
        assert routes_for(lab, instance) == graph_routes(lab, instance) + graph_routes6(lab, instance)


def test_sessions_follow_shared_networks_and_relations(internet):
    border = {s.neighbor: s for s in sessions(internet, internet.instance("isp-a-border"))}
    # ISP B is heard through the IXP's route server, not over a session of its own
    assert {name: s.relation for name, s in border.items()} == {
        "ixp-rs": PEER, "transit-router": PROVIDER, "site-router": CUSTOMER, "isp-a-edge": INTERNAL}
    assert str(border["ixp-rs"].address) == "198.18.34.10" and border["ixp-rs"].to_route_server
    assert border["site-router"].remote_as == 64700
    edge = sessions(internet, internet.instance("isp-a-edge"))
    assert [(s.neighbor, s.relation) for s in edge] == [("isp-a-border", INTERNAL)]


def test_the_route_server_serves_every_member_transparently_and_members_skip_the_mesh(internet, plan):
    served = sessions(internet, internet.instance("ixp-rs"))
    assert [(s.neighbor, s.relation, s.route_server_client) for s in served] == [
        ("isp-a-border", PEER, True), ("isp-b-router", PEER, True)]
    text = config(plan, "ixp-rs")
    assert "  neighbor 198.18.34.1 route-server-client" in text
    assert "  neighbor 198.18.34.2 route-server-client" in text
    assert " neighbor 198.18.34.2 description isp-b-router (route-server client)" in text
    assert "route-map" not in text and "network " not in text    # no policy and nothing of its own
    assert " no bgp ebgp-requires-policy" in text                 # ... so FRR must not ask for one
    member = config(plan, "isp-b-router")
    assert " no neighbor 198.18.34.10 enforce-first-as" in member   # paths from it start with ISP A
    assert "198.18.34.1 " not in member                              # no direct session to ISP A


def test_without_a_route_server_the_members_of_an_exchange_peer_directly(internet):
    text = INTERNET.read_text().replace("    route_server: true\n", "")
    lab = load_text(text, "internet.yaml")
    border = {s.neighbor: s for s in sessions(lab, lab.instance("isp-a-border"))}
    assert border["isp-b-router"].relation == PEER and "ixp-rs" in border   # ixp-rs: just another AS now
    assert not border["ixp-rs"].to_route_server


def test_daemons_file_runs_ospf_only_with_as_networks(plan):
    daemons = plan.container("isp-a-border").files[DAEMONS_FILE]
    assert "bgpd=yes" in daemons and "ospfd=yes" in daemons and "bfdd=yes" in daemons


def test_ospf_covers_the_routers_own_as_networks_only(plan):
    ospf = block(config(plan, "isp-a-border"), "router ospf")
    assert " network 100.64.32.0/24 area 0" in ospf and " network 100.64.34.0/24 area 0" in ospf
    assert not any("198.18." in line for line in ospf)   # transit's link and the IXP are not ISP A's


def test_ibgp_uses_next_hop_self_and_the_as_networks(plan):
    text = config(plan, "isp-a-edge")
    assert " neighbor 100.64.32.2 remote-as 64601" in text
    assert "  neighbor 100.64.32.2 next-hop-self" in text
    assert "  network 100.64.33.0/24" in text and "  network 100.64.34.0/24" in text


def test_imports_tag_the_relation_and_set_its_preference(plan):
    text = config(plan, "isp-a-border")
    assert block(text, "route-map FROM-SITE_ROUTER permit 10") == [
        "route-map FROM-SITE_ROUTER permit 10", f" set community {RELATION_COMMUNITY[CUSTOMER]}",
        " set local-preference 200"]
    assert f" set community {RELATION_COMMUNITY[PEER]}" in block(text, "route-map FROM-IXP_RS permit 10")
    assert " set local-preference 100" in block(text, "route-map FROM-TRANSIT_ROUTER permit 10")


def test_routes_from_peers_and_providers_go_to_customers_only(plan):
    text = config(plan, "isp-a-border")
    for upstream in ("IXP_RS", "TRANSIT_ROUTER"):
        assert block(text, f"route-map TO-{upstream} deny 10") == [
            f"route-map TO-{upstream} deny 10", f" match community {NOT_FOR_UPSTREAM}"]
    assert "route-map TO-SITE_ROUTER deny 10" not in text      # a customer gets everything
    assert "route-map TO-SITE_ROUTER permit 10" in text
    communities = [line for line in text.splitlines() if line.startswith("bgp community-list")]
    assert communities == [f"bgp community-list standard {NOT_FOR_UPSTREAM} permit {RELATION_COMMUNITY[PEER]}",
                           f"bgp community-list standard {NOT_FOR_UPSTREAM} permit {RELATION_COMMUNITY[PROVIDER]}"]


def test_a_multi_homed_site_never_passes_one_providers_routes_to_the_other(plan):
    # The route-leak rule, seen from the shop: both ISPs are its providers.
    text = config(plan, "site-router")
    for provider in ("ISP_A_BORDER", "ISP_B_ROUTER"):
        assert f" match community {NOT_FOR_UPSTREAM}" in block(text, f"route-map TO-{provider} deny 10")


def test_prepend_and_local_preference_come_from_the_topology(plan):
    text = config(plan, "site-router")
    assert " set as-path prepend 64700 64700" in block(text, "route-map TO-ISP_B_ROUTER permit 20")
    assert "prepend" not in "\n".join(block(text, "route-map TO-ISP_A_BORDER permit 20"))
    assert " set local-preference 300" in block(text, "route-map FROM-ISP_A_BORDER permit 10")


def test_ebgp_neighbours_get_bfd_and_ibgp_an_update_source(plan):
    text = config(plan, "isp-a-border")
    assert " neighbor 100.64.34.2 bfd profile lab-link" in text
    assert " neighbor 100.64.32.1 update-source 100.64.32.2" in text
    assert " neighbor 100.64.32.1 bfd profile lab-link" not in text


def test_rendering_is_deterministic(internet):
    assert config(make_plan(internet), "isp-b-router") == config(make_plan(internet), "isp-b-router")


def test_the_graph_names_each_routers_as(internet):
    notes = {node.name: node.note for node in build_graph(internet).nodes}
    assert notes["isp-b-router"] == "AS64602 isp-b"
    assert notes["home-router"] == "NAT for home"


def test_expected_as_path_takes_names_numbers_and_text(internet):
    assert expected_as_path(internet, ["isp-a", "shop"]) == (64601, 64700)
    assert expected_as_path(internet, "64601 AS64700") == (64601, 64700)
    assert expected_as_path(internet, ["nowhere"]) is None


BROKEN = [
    ("ixp:            {subnet: 198.18.34.0/24,", "ixp:            {subnet: 198.18.34.0/24, as: isp-c,",
     "unknown autonomous system 'isp-c'"),
    ("  isp-b:   {number: 64602,", "  isp-b:   {number: 64601,", "AS number 64601 is already 'isp-a''s"),
    ("providers: [isp-a, isp-b]", "providers: [isp-a, isp-z]", "'isp-z' is not another autonomous system"),
    ("      isp-b-router: {prepend: 2}", "      root-1: {prepend: 2}", "'root-1' is not a BGP neighbour"),
    ("    from: isp-a-border\n    expect: [shop]", "    from: laptop\n    expect: [shop]",
     "a route check needs `from:` a router in an autonomous system"),
    ("    route: shop-net\n    from: isp-a-border", "    route: shop-nett\n    from: isp-a-border",
     "'shop-nett' is neither a network"),
    ("    expect: [isp-a, shop]", "    expect: [isp-a, shoop]", "is not an AS path"),
    ("  site-router:\n    kind: router", "  site-router:\n    kind: firewall", "a firewall cannot run BGP yet"),
]


@pytest.mark.parametrize("old, new, message", BROKEN, ids=[case[2][:30] for case in BROKEN])
def test_mistakes_about_autonomous_systems_are_reported_at_their_line(old, new, message):
    text = INTERNET.read_text()
    assert old in text
    with pytest.raises(TopologyError) as caught:
        load_text(text.replace(old, new, 1), "internet.yaml")
    assert any(message in str(problem) for problem in caught.value.problems), str(caught.value)
    assert all(str(problem).startswith("internet.yaml:") for problem in caught.value.problems)
