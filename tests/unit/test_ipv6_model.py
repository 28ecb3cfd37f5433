"""IPv6 beside IPv4 in the topology model: prefixes, derived and explicit addresses."""

from ipaddress import IPv6Address

import pytest

from lab.topology import TopologyError, load_text

DUAL = """
name: six
internet: backbone
networks:
  home: {subnet: 100.64.10.0/24, subnet6: "fd6c:6162:64:10::/64"}
  backbone: {subnet: 198.18.0.0/24, subnet6: "fd6c:6162:198:0::/64"}
  legacy: {subnet: 198.18.5.0/24}
nodes:
  pc: {kind: client, networks: [home]}
  r: {kind: router, networks: [home, backbone, legacy]}
  s: {kind: app, replicas: 2, networks: {backbone: 198.18.0.20}, ip6: {backbone: "fd6c:6162:198::100"}}
"""


def test_v6_address_has_the_v4_host_part():
    lab = load_text(DUAL)
    pc = lab.instance("pc")
    assert pc.addresses6["home"] == IPv6Address(int(IPv6Address("fd6c:6162:64:10::")) +
                                                (int(pc.addresses["home"]) & 0xFF))


def test_network_without_prefix_gives_no_v6_address():
    router = load_text(DUAL).instance("r")
    assert "legacy" in router.addresses and "legacy" not in router.addresses6


def test_explicit_ip6_counts_up_with_replicas():
    lab = load_text(DUAL)
    assert [str(lab.instance(n).addresses6["backbone"]) for n in ("s-1", "s-2")] == \
        ["fd6c:6162:198::100", "fd6c:6162:198::101"]


def test_gateway_v6_mirrors_the_v4_gateway():
    lab = load_text(DUAL)
    for net, gateway in lab.gateways6.items():
        subnet = lab.spec.networks[net].subnet
        assert int(gateway) & 0xFF == int(lab.gateways[net]) - int(subnet.network_address)
    assert "legacy" not in lab.gateways6


def test_explicit_ip6_clashing_with_a_derived_one_is_reported():
    text = DUAL.replace('fd6c:6162:198::100', 'fd6c:6162:198::1')   # r's derived address
    with pytest.raises(TopologyError) as caught:
        load_text(text)
    assert any("fd6c:6162:198::1" in str(p) and "already" in str(p) for p in caught.value.problems)


def test_a_lab_without_prefixes_has_no_v6():
    lab = load_text(DUAL.replace(', subnet6: "fd6c:6162:64:10::/64"', "")
                    .replace(', subnet6: "fd6c:6162:198:0::/64"', "")
                    .replace(', ip6: {backbone: "fd6c:6162:198::100"}', ""))
    assert not lab.gateways6 and all(not i.addresses6 for i in lab.instances)
