"""`lab firewall explain` over IPv6, computed from the file alone: the path in IPv6 (the same
routers, IPv6 masquerade, no port forward), the ip6tables rule that decides, and the ends a
user gives (names or addresses) with the families they allow, refused with exit 2 otherwise."""

from __future__ import annotations

import re
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest

from lab.errors import UsageError
from lab.firewall.endpoints import families, resolve_end
from lab.firewall.explain import computed_verdicts
from lab.firewall.path import flow_path
from lab.plan.iptables import render_rules
from lab.firewall.policy import node_policy
from lab.topology import load_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "topology" / "default.yaml").read_text()


@pytest.fixture(scope="module")
def shop():
    return load_text(DEFAULT)


@pytest.fixture(scope="module")
def half_v6():
    """The default lab with the data network IPv4 only: db has no IPv6 address."""
    text = re.sub(r'(data: +\{subnet: [0-9./]+),\s*subnet6: "[^"]+"', r"\1", DEFAULT)
    assert text != DEFAULT
    return load_text(text)


@pytest.mark.parametrize("source,target,proto,port,rule", [
    ("laptop", "lb", "tcp", 443, "web-in"), ("laptop", "lb", "tcp", 22, "ssh-in"),
    ("laptop", "db", "tcp", 5432, "default-deny"), ("lb", "app-2", "tcp", 8000, "lb-to-apps"),
    ("app-3", "db", "tcp", 5432, "apps-to-db"), ("laptop", "lb", "icmp", None, "ping-lb"),
    ("laptop", "fw", "icmp", None, "input-icmp"),
])
def test_over_ipv6_the_same_rule_decides_on_the_ipv6_path(shop, source, target, proto, port, rule):
    path = flow_path(shop, shop.instance(source), shop.instance(target), proto, port, family=6)
    assert path.flow.destination.version == 6 and path.flow.source.version == 6
    verdicts = computed_verdicts(shop, path)
    assert [v.rule.name for v in verdicts] == [rule]
    # the rule that decides has a line in the ip6tables file (so its counter can rise there)
    rules6 = render_rules(node_policy(shop, "fw"), True, logging=False, family=6)
    assert f"--comment {rule} " in rules6


def test_the_ipv6_path_is_masqueraded_by_home_router(shop):
    path = flow_path(shop, shop.instance("laptop"), shop.instance("lb"), "tcp", 443, family=6)
    assert [hop.instance.name for hop in path.hops] == ["home-router", "isp-router", "fw"]
    assert path.flow.source == shop.instance("laptop").addresses6["home"]
    assert path.hops[-1].flow.source == shop.instance("home-router").addresses6["isp"]
    assert path.delivered.destination == shop.instance("lb").addresses6["dmz"]


def test_a_given_destination_address_decides_the_family(shop):
    lb6 = shop.instance("lb").addresses6["dmz"]
    path = flow_path(shop, shop.instance("laptop"), shop.instance("lb"), "tcp", 443, destination=lb6)
    assert isinstance(path.flow.destination, IPv6Address) and path.ends_at.name == "lb"


def test_names_and_addresses_resolve_to_nodes(shop):
    assert resolve_end(shop, "app-2").name == "app-2"
    assert resolve_end(shop, "app").name == "app-1"                # a node: its first replica
    end = resolve_end(shop, "fd6c:6162:198:20::c")
    assert end.name == "app-2" and end.address == ip_address("fd6c:6162:198:20::c")
    assert resolve_end(shop, "198.18.30.10").name == "db"


@pytest.mark.parametrize("text,message", [
    ("fd6c:6162:198:20::99", "fd6c:6162:198:20::99 is no address of a node of lab 'shop' "
                             "(its IPv6 networks are fd6c:6162:64:10::/64"),
    ("2001:db8::1", "is no address of a node"),
    ("198.18.20.99", "its IPv4 networks are 100.64.10.0/24"),
    ("nosuch", "has no node 'nosuch'"),
])
def test_an_end_not_in_the_lab_is_refused_naming_what_is(shop, text, message):
    with pytest.raises(UsageError, match=re.escape(message)) as refused:
        resolve_end(shop, text)
    assert refused.value.exit_code == 2


def test_two_names_give_both_families_and_an_address_one(shop):
    laptop, lb = resolve_end(shop, "laptop"), resolve_end(shop, "lb")
    assert families(shop, laptop, lb, None) == ([4, 6], [])
    assert families(shop, laptop, lb, 6) == ([6], [])
    assert families(shop, laptop, resolve_end(shop, "fd6c:6162:198:10::a"), None) == ([6], [])
    assert families(shop, laptop, resolve_end(shop, "198.18.10.10"), None) == ([4], [])


def test_a_family_the_network_lacks_is_refused_or_left_out_with_a_note(half_v6):
    laptop, db = resolve_end(half_v6, "laptop"), resolve_end(half_v6, "db")
    with pytest.raises(UsageError, match=r"node 'db' has no IPv6 address: its networks \(data\) carry no "
                                         r"IPv6 prefix \(add `subnet6:` to one of them\)") as refused:
        families(half_v6, laptop, db, 6)
    assert refused.value.exit_code == 2
    chosen, notes = families(half_v6, laptop, db, None)
    assert chosen == [4] and notes == ["not over IPv6: node 'db' has no IPv6 address: its networks (data) "
                                       "carry no IPv6 prefix (add `subnet6:` to one of them)"]


def test_mixed_or_contradicting_families_are_refused(shop):
    laptop6 = resolve_end(shop, "fd6c:6162:64:10::a")
    lb4 = resolve_end(shop, "198.18.10.10")
    with pytest.raises(UsageError, match="a flow has one family"):
        families(shop, laptop6, lb4, None)
    with pytest.raises(UsageError, match="-4 asks for IPv4, but the address given is IPv6"):
        families(shop, resolve_end(shop, "laptop"), resolve_end(shop, "fd6c:6162:198:10::a"), 4)


def test_a_traced_request_over_ipv6_is_walked_in_ipv6(shop):
    """`lab trace -6`: the firewall step's path is the one the IPv6 connection took (the rules
    of ip6tables), not the IPv4 one. The default lab has no autonomous system: no engine asked."""
    from lab.trace.journey import _request_path
    lb = shop.instance("lb")
    six = _request_path(None, shop, "laptop", lb, str(lb.addresses6["dmz"]), 443)
    assert six.hops[-1].flow.source == shop.instance("home-router").addresses6["isp"]
    four = _request_path(None, shop, "laptop", lb, str(lb.first_address), 443)
    assert four.hops[-1].flow.source == shop.instance("home-router").address_on("isp")
