"""The seal: nothing leaves the lab and nothing outside it answers a node.

Three layers, each closing what the one before leaves open:

- the engine's networks are bridges that do not masquerade (SEALED_BRIDGE_OPTIONS),
  so a packet that still reached the engine's host would leave with a lab address
  nobody outside routes back;
- routes: nodes on the `internet:` network have no default route (lab/topology/routes.py);
- every node's namespace drops, in the raw table (before conntrack and NAT), what it
  sends to the engine's gateway address on any lab network and to the engine's
  embedded DNS (127.0.0.11); routers also drop what they would forward there.
  Nodes without NET_ADMIN get these rules from the route helper, from outside, so
  they cannot remove them; routers and firewalls load them with their own rules.
  The engine's DNS redirection (its nat chains) is removed as well.

Firewalls drop forwarded traffic to the gateways with a named filter rule instead
(`engine-gateway`, lab/firewall/policy.py), so `lab firewall show` counts it and
`to: NETWORK` never means the engine's host.

IPv6 (seal6.rules, ip6tables-restore input) closes two more doors: the engine's host also
has a link-local address on every dual-stack bridge, and answers what is sent to all
nodes (ff02::1). So a node sends nothing to link-local or multicast addresses but what
IPv6 itself needs there: neighbour discovery and multicast listener reports (without them
no neighbour is found), and OSPFv3, which speaks link-local.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Iterable

from lab.firewall.policy import PolicyRule
from lab.plan.iptables import rule_lines

# Docker 20.10 knows no per-network switch for forwarding off the bridge (its
# `--internal` networks drop routed lab traffic): masquerade is the one to turn off.
SEALED_BRIDGE_OPTIONS = {"com.docker.network.bridge.enable_ip_masquerade": "false"}

EMBEDDED_DNS = "127.0.0.11"
SEAL_FILE = "seal.rules"
SEAL6_FILE = "seal6.rules"
LINK_COMMENT = "seal-engine-link"
LINK_NEEDS_COMMENT = "seal-ipv6-needs"
OSPF_COMMENT = "seal-ipv6-ospf"
ON_THE_LINK = (IPv6Network("fe80::/10"), IPv6Network("ff00::/8"))
# Router solicitation, MLD query/report/done, neighbour solicitation/advertisement, MLDv2 report
IPV6_LINK_ICMP = ("133", "130", "131", "132", "135", "136", "143")
OSPF = "89"
GATEWAY_COMMENT = "seal-engine-gateway"
DNS_COMMENT = "seal-engine-dns"


def _hosts(addresses: Iterable) -> tuple[IPv4Network | IPv6Network, ...]:
    ordered = sorted({ip_address(str(a)) for a in addresses}, key=lambda a: (a.version, a))
    return tuple(ip_network(f"{a}/{a.max_prefixlen}") for a in ordered)


def _link_rules() -> list[PolicyRule]:
    return [PolicyRule(LINK_NEEDS_COMMENT, "raw", "OUTPUT", "allow", "icmp", destinations=ON_THE_LINK,
                       icmp_types=IPV6_LINK_ICMP, summary="neighbour discovery and multicast reports"),
            PolicyRule(OSPF_COMMENT, "raw", "OUTPUT", "allow", OSPF, destinations=ON_THE_LINK,
                       summary="OSPFv3 (link-local)"),
            PolicyRule(LINK_COMMENT, "raw", "OUTPUT", "deny", destinations=ON_THE_LINK,
                       summary="the engine's host on the link (link-local, multicast)")]


def seal_policy(gateways: Iterable, forwards_unfiltered: bool, dual_stack: bool = False) -> list[PolicyRule]:
    """The seal of one node as rules of its raw table: what it sends to the engine's DNS
    and gateways (either family) is dropped, and for a plain router what it would forward
    to a gateway; on a dual-stack node, what it sends on the link but IPv6's own needs.
    `lab firewall show` lists them with their counters."""
    hosts = _hosts(gateways)
    rules = [PolicyRule(DNS_COMMENT, "raw", "OUTPUT", "deny", destinations=_hosts([EMBEDDED_DNS]),
                        summary="the engine's embedded DNS"),
             PolicyRule(GATEWAY_COMMENT, "raw", "OUTPUT", "deny", destinations=hosts,
                        summary="the engine's host on lab networks")]
    if dual_stack:
        rules += _link_rules()
    if forwards_unfiltered:
        rules.append(PolicyRule(GATEWAY_COMMENT, "raw", "PREROUTING", "deny", destinations=hosts,
                                summary="forwarding to the engine's host"))
    return rules


def raw_table(gateways: Iterable, forwards_unfiltered: bool, family: int = 4) -> list[str]:
    """The raw-table section of an iptables-restore (family 6: ip6tables-restore) file with
    the seal's rules; gateways of both families may be given, each file takes its own."""
    lines = ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for rule in seal_policy(gateways, forwards_unfiltered, dual_stack=family == 6):
        lines += rule_lines(rule, logging=False, family=family)
    return lines + ["COMMIT"]


def render_seal6_rules(gateways6: Iterable) -> str:
    """ip6tables-restore input for a dual-stack node that does not forward: its raw section."""
    header = ["# Generated by lab: the IPv6 seal (see lab/plan/seal.py); installed from outside the node."]
    return "\n".join(header + raw_table(gateways6, forwards_unfiltered=False, family=6)) + "\n"


def render_seal_rules(gateways: Iterable) -> str:
    """iptables-restore input for a node that does not forward: the raw section, and an
    empty nat table, which removes the engine's DNS redirection (DOCKER_OUTPUT)."""
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", "COMMIT"]
    header = ["# Generated by lab: the seal (see lab/plan/seal.py); installed from outside the node."]
    return "\n".join(header + raw_table(gateways, forwards_unfiltered=False) + nat) + "\n"
