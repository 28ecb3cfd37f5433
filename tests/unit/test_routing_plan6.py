"""IPv6 beside IPv4 in the FRR plan of the internet topology: OSPFv3 inside each AS, one BGP
session per family, the IPv6 address family with the same export maps as IPv4's, next hops
that name lab addresses, and the route server serving both families."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.plan import make_plan
from lab.plan.frr import CONFIG_FILE, DAEMONS_FILE, INTERFACE_PLACEHOLDER
from lab.topology import TopologyError, load_text, load_topology
from lab.topology.autonomy import announced, ospf_networks, route_prefix, sessions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def internet():
    return load_topology(ROOT / "topology" / "internet.yaml")


@pytest.fixture(scope="module")
def plan(internet):
    return make_plan(internet)


def config(plan, node: str) -> str:
    return plan.container(node).files[CONFIG_FILE]


def family_block(text: str, family: int) -> list[str]:
    lines = text.splitlines()
    start = lines.index(f" address-family ipv{family} unicast")
    return lines[start:lines.index(" exit-address-family", start)]


def test_every_session_exists_once_per_family_between_the_same_routers(internet):
    for instance in internet.instances:
        four, six = sessions(internet, instance), sessions(internet, instance, 6)
        assert [(s.neighbor, s.relation, s.network) for s in four] == \
            [(s.neighbor, s.relation, s.network) for s in six], instance.name
        assert all(s.family == 4 for s in four) and all(s.family == 6 for s in six)
        for session in six:
            assert session.address == internet.instance(session.neighbor).addresses6[session.network]


def test_the_ipv6_family_announces_the_as_prefixes_to_the_ipv6_sessions_only(internet, plan):
    text = config(plan, "isp-a-border")
    six, four = family_block(text, 6), family_block(text, 4)
    prefixes = [str(p) for p in announced(internet, internet.instance("isp-a-border"), 6)]
    assert prefixes == ["fd6c:6162:64:32::/64", "fd6c:6162:64:33::/64", "fd6c:6162:64:34::/64"]
    assert all(f"  network {p}" in six for p in prefixes)
    assert all(":" in line.split()[1] for line in six if line.startswith("  neighbor"))
    assert not any(":" in line.split()[1] for line in four if line.startswith("  neighbor"))


def test_both_families_share_the_export_map_and_ipv6_imports_prefer_global_next_hops(plan):
    text = config(plan, "site-router")
    six = family_block(text, 6)
    assert "  neighbor fd6c:6162:64:36::1 route-map TO-ISP_B_ROUTER out" in six
    assert "  neighbor 100.64.36.1 route-map TO-ISP_B_ROUTER out" in family_block(text, 4)
    assert "  neighbor fd6c:6162:64:36::1 route-map FROM-ISP_B_ROUTER-V6 in" in six
    lines = text.splitlines()
    start = lines.index("route-map FROM-ISP_A_BORDER-V6 permit 10")
    assert lines[start:lines.index("!", start)] == [
        "route-map FROM-ISP_A_BORDER-V6 permit 10", " set community 64512:3", " set local-preference 300",
        " set ipv6 next-hop prefer-global"]
    assert text.count("route-map TO-ISP_B_ROUTER deny 10") == 1   # one export rule, both families


def test_ibgp_in_ipv6_sets_our_own_next_hop_and_sources_from_our_as_address(plan):
    text = config(plan, "isp-a-edge")
    assert " neighbor fd6c:6162:64:32::2 update-source fd6c:6162:64:32::1" in text
    six = family_block(text, 6)
    assert "  neighbor fd6c:6162:64:32::2 route-map TO-INTERNAL-V6 out" in six
    assert "route-map TO-INTERNAL-V6 permit 10\n set ipv6 next-hop peer-address" in text


def test_advertisement_interval_is_a_neighbour_setting_outside_the_families(plan):
    # Inside an address family FRR 8.4 climbs back to `router bgp` for it and then reads the
    # family's next lines as IPv4's: it must stay among the neighbour lines.
    text = config(plan, "isp-a-border")
    for family in (4, 6):
        assert not any("advertisement-interval" in line for line in family_block(text, family))
    assert " neighbor fd6c:6162:64:34::2 advertisement-interval 0" in text


def test_ospfv3_runs_on_the_as_interfaces_named_by_address(internet, plan):
    text = config(plan, "isp-a-border")
    for address in ("fd6c:6162:64:32::2", "fd6c:6162:64:34::1"):
        assert f"interface {INTERFACE_PLACEHOLDER.format(address=address)}\n ipv6 ospf6 area 0" in text
    assert "fd6c:6162:198:34::1]" not in text     # the IXP is no AS's: no OSPFv3 there
    assert "router ospf6\n ospf6 router-id 100.64.32.2" in text
    assert [str(p) for p in ospf_networks(internet, internet.instance("isp-a-border"), 6)] == [
        "fd6c:6162:64:32::/64", "fd6c:6162:64:34::/64"]
    assert "ospf6d=yes" in plan.container("isp-a-border").files[DAEMONS_FILE]
    assert "ospf6d=no" in plan.container("ixp-rs").files[DAEMONS_FILE]


def test_the_route_server_serves_both_families_transparently(plan):
    text = config(plan, "ixp-rs")
    assert "  neighbor fd6c:6162:198:34::1 route-server-client" in family_block(text, 6)
    assert "  neighbor 198.18.34.1 route-server-client" in family_block(text, 4)
    members = config(plan, "isp-b-router")
    assert " no neighbor fd6c:6162:198:34::a enforce-first-as" in members


def test_a_route_check_of_family_6_asks_for_the_ipv6_prefix(internet):
    assert str(route_prefix(internet, "shop-net", 6)) == "fd6c:6162:198:35::/64"
    assert str(route_prefix(internet, "shop-net")) == "198.18.35.0/24"
    assert route_prefix(internet, "198.18.35.0/24", 6) is None


def test_dual_stack_nodes_keep_their_ipv6_addresses_across_a_link_down(plan):
    # without it the kernel drops them on `lab link down` and the IPv6 session never returns
    for node in ("site-router", "isp-a-border", "laptop"):
        assert plan.container(node).sysctls["net.ipv6.conf.all.keep_addr_on_down"] == "1"


WRONG_FAMILY = [
    ("    route: isp-a-access\n    family: 6", "    route: 100.64.33.0/24\n    family: 6",
     "'100.64.33.0/24' is neither a network", "(of the family asked)"),
    ('{subnet: 100.64.31.0/24, subnet6: "fd6c:6162:64:31::/64",', "{subnet: 100.64.31.0/24,",
     "network 'home' has no IPv6 prefix", "leave `family: 6` out"),
]


@pytest.mark.parametrize("old, new, message, fix", WRONG_FAMILY, ids=["ipv4 prefix", "no subnet6"])
def test_a_route_check_of_the_wrong_family_is_reported_at_its_line(old, new, message, fix):
    text = (ROOT / "topology" / "internet.yaml").read_text()
    if "home" in message:   # ask about the home network over IPv6 once it has no IPv6 prefix
        text = text.replace("    route: isp-a-access\n    family: 6", "    route: home\n    family: 6")
    assert old in text
    with pytest.raises(TopologyError) as caught:
        load_text(text.replace(old, new), "internet.yaml")
    problems = [str(p) for p in caught.value.problems]
    found = [p for p in problems if message in p]
    assert found and fix in found[0] and found[0].startswith("internet.yaml:"), problems
