"""The shipped topologies load, and the derived facts are what the format promises."""

from ipaddress import IPv4Address

import pytest
from pydantic import ValidationError

from lab.topology import TopologyError, load_text, load_topology
from lab.topology.schema import SCHEMA_FILE, topology_schema_text


@pytest.mark.parametrize("name", ["default", "minimal"])
def test_shipped_topologies_are_valid(root, name):
    lab = load_topology(root / "topology" / f"{name}.yaml")
    assert lab.instances


def test_default_lab_has_the_reference_node_names(root):
    lab = load_topology(root / "topology" / "default.yaml")
    assert set(lab.instance_names()) == {
        "laptop", "home-router", "isp-router", "resolver", "root-1", "tld-test", "ns-shop",
        "fw", "lb", "web-1", "web-2", "app-1", "app-2", "app-3", "db"}
    assert "www" in lab.spec.zones["shop.test"].records


def test_replicas_get_consecutive_addresses_from_the_first(root):
    lab = load_topology(root / "topology" / "default.yaml")
    addresses = [i.address_on("apps") for i in lab.instances_of("app")]
    assert addresses == [IPv4Address("198.18.20.11"), IPv4Address("198.18.20.12"),
                         IPv4Address("198.18.20.13")]
    assert [i.replica for i in lab.instances_of("app")] == [1, 2, 3]


MINI = """
name: t
networks:
  a: {subnet: 198.18.5.0/24}
  b: {subnet: 198.18.6.0/28}
nodes:
  c: {kind: client, networks: [a]}
  r: {kind: router, networks: [a, b]}
  w: {kind: app, networks: [b], replicas: 2}
"""


def test_allocation_puts_routers_low_servers_from_ten_and_gateway_high():
    lab = load_text(MINI)
    assert lab.instance("r").address_on("a") == IPv4Address("198.18.5.1")
    assert lab.instance("c").address_on("a") == IPv4Address("198.18.5.10")
    # a /28 is too small to start at .10 comfortably: servers fill from the bottom
    assert lab.instance("w-1").address_on("b") == IPv4Address("198.18.6.2")
    assert lab.gateways["a"] == IPv4Address("198.18.5.254")
    assert lab.gateways["b"] == IPv4Address("198.18.6.14")


def test_allocation_is_stable_and_never_reuses_an_address():
    first, second = load_text(MINI), load_text(MINI)
    assert first.instances == second.instances
    for net in ("a", "b"):
        used = [i.addresses[net] for i in first.instances if net in i.addresses]
        used.append(first.gateways[net])
        assert len(used) == len(set(used))


def test_networks_may_be_a_list_or_a_mapping():
    lab = load_text(MINI.replace("networks: [a]}", "networks: {a: 198.18.5.77}}"))
    assert lab.instance("c").address_on("a") == IPv4Address("198.18.5.77")


def test_ports_accept_one_a_list_and_a_range(root):
    lab = load_topology(root / "topology" / "default.yaml")
    rules = {r.name: r for r in lab.spec.nodes["fw"].rules}
    assert rules["web-in"].ports == ((80, 80), (443, 443))
    assert rules["lb-to-apps"].ports == ((8000, 8000),)
    text = MINI.replace("  w: {", "  f: {kind: firewall, networks: [b], rules: [{name: x, from: any, "
                        "to: w, ports: '8000-8010'}]}\n  w: {")
    rule = load_text(text).spec.nodes["f"].rules[0]
    assert rule.ports == ((8000, 8010),)


def test_a_model_is_immutable():
    lab = load_text(MINI)
    with pytest.raises(ValidationError, match="frozen"):
        lab.spec.name = "other"


def test_error_message_names_file_line_and_column():
    with pytest.raises(TopologyError) as caught:
        load_text(MINI.replace("kind: router", "kind: ruoter"), "lab.yaml")
    assert str(caught.value.problems[0]).startswith("lab.yaml:8:13: nodes.r.kind: unknown kind 'ruoter'")


def test_committed_schema_matches_the_model(root):
    assert (root / SCHEMA_FILE).read_text() == topology_schema_text(), (
        "schema/topology.schema.json is stale: run `lab schema > schema/topology.schema.json`")
