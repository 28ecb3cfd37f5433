"""A router's or firewall's rules, compiled from the topology's intent.

One ordered list of `PolicyRule` per node is the single truth: the iptables
renderer (lab/plan/iptables.py) writes it out, and `decide` walks it to say
which rule a new flow meets first. Both read the same objects, so what
`lab firewall explain` computes is what the kernel enforces.

Order of a firewall's FORWARD chain, and why:
  established   return traffic of allowed flows (and their ICMP errors) passes first,
                so reloading rules never cuts a connection that is still allowed;
  icmp-errors   destination-unreachable (incl. fragmentation-needed) and time-exceeded,
                that traceroute and path-MTU discovery need, even when conntrack holds
                no state for the packet inside (it would call them INVALID);
  invalid       what conntrack cannot place is dropped;
  engine-gateway  the engine's host address on every lab network is no part of the
                lab: `to: apps` means the nodes on apps, never the host (see lab/plan/seal.py);
  publish-*     port forwards (DNAT) of this firewall;
  intent rules  in the order written: the first match decides;
  default-deny  everything else, as a rule of its own so its counter shows what it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.topology.lab import Lab
from lab.topology.model import BUILTIN_RULE_NAMES, PUBLISH_RULE_PREFIX, FirewallRule, PortForward

BUILTIN_NAMES = BUILTIN_RULE_NAMES
PUBLISH_PREFIX = PUBLISH_RULE_PREFIX
MASQUERADE_PREFIX = "masquerade-"
ENGINE_GATEWAY = "engine-gateway"
TRACEROUTE_PORTS = ((33434, 33534),)   # the ports `traceroute` (UDP) probes
ICMP_ERRORS = ("destination-unreachable", "time-exceeded")
ALLOWING = ("allow", "accept")


@dataclass(frozen=True)
class Flow:
    """The first packet of a connection as one node sees it."""

    source: IPv4Address | IPv6Address
    destination: IPv4Address | IPv6Address
    proto: str                 # tcp, udp, icmp
    port: int | None = None    # destination port (tcp/udp)
    dnat: bool = False         # this node rewrote the destination (a port forward)


@dataclass(frozen=True)
class PolicyRule:
    name: str                                         # the iptables comment
    table: str                                        # filter or nat
    chain: str                                        # FORWARD, INPUT, PREROUTING, POSTROUTING
    action: str                                       # allow, deny, reject, masquerade, dnat
    proto: str | None = None
    sources: tuple[IPv4Network | IPv6Network, ...] | None = None    # None: any
    destinations: tuple[IPv4Network | IPv6Network, ...] | None = None
    not_destination: IPv4Network | IPv6Network | None = None        # masquerade: "leaving this network"
    ports: tuple[tuple[int, int], ...] | None = None
    states: tuple[str, ...] = ()                      # conntrack states it needs
    icmp_types: tuple[str, ...] = ()
    in_interface: str | None = None
    to_destination: str | None = None                 # DNAT target "address:port"
    log: bool = False
    intent: FirewallRule | None = None                # the topology rule it comes from
    summary: str = ""                                 # for built-in rules: what it is for

    @property
    def builtin(self) -> bool:
        return self.intent is None

    def matches_new(self, flow: Flow) -> bool:
        """Does the first packet of `flow` (a NEW connection, from outside) match this rule?"""
        if self.in_interface == "lo" or self.icmp_types:
            return False   # loopback never crosses the lab; our probes are never ICMP errors
        if self.states and not (self.states == ("DNAT",) and flow.dnat):
            return False
        if self.proto and self.proto != flow.proto:
            return False
        # A rule's networks of the other family say nothing about this flow (and `in` would
        # compare the bare numbers): a rule with none of the flow's family has no line for it.
        if self.sources is not None and not _within(flow.source, self.sources):
            return False
        if self.destinations is not None and not _within(flow.destination, self.destinations):
            return False
        if self.ports is not None and (flow.port is None
                                       or not any(lo <= flow.port <= hi for lo, hi in self.ports)):
            return False
        return True


def _within(address, networks) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _host(address: IPv4Address | IPv6Address) -> IPv4Network | IPv6Network:
    return ip_network(f"{address}/{address.max_prefixlen}")


def addresses_of(lab: Lab, name: str) -> tuple[IPv4Network, ...] | None:
    """What a rule's 'from'/'to' names: None for any, a subnet, or every address of every
    instance of a node (so a rule about `app` covers all its replicas)."""
    if name == "any":
        return None
    if name in lab.spec.networks:
        network = lab.spec.networks[name]
        return (network.subnet, *([network.subnet6] if network.subnet6 else []))
    return tuple(_host(address) for instance in lab.instances_of(name)
                 for address in instance.all_addresses())


def _intent_rule(lab: Lab, rule: FirewallRule) -> PolicyRule:
    return PolicyRule(rule.name, "filter", "FORWARD", rule.action, rule.proto,
                      addresses_of(lab, rule.from_), addresses_of(lab, rule.to), ports=rule.ports,
                      log=rule.log, intent=rule)


def _target_address(lab: Lab, forward: PortForward) -> IPv4Address:
    return lab.instances_of(forward.to)[0].first_address


def publish_name(forward: PortForward) -> str:
    return f"{PUBLISH_PREFIX}{forward.proto}-{forward.port}"


def _forward_chain(lab: Lab, node: str) -> list[PolicyRule]:
    spec = lab.spec.nodes[node]
    rules = [
        PolicyRule("established", "filter", "FORWARD", "allow", states=("ESTABLISHED", "RELATED"),
                   summary="replies and related ICMP of allowed flows"),
        PolicyRule("icmp-errors", "filter", "FORWARD", "allow", "icmp", icmp_types=ICMP_ERRORS,
                   summary="ICMP errors traceroute and path-MTU discovery need"),
        PolicyRule("invalid", "filter", "FORWARD", "deny", states=("INVALID",),
                   summary="packets conntrack cannot place"),
        PolicyRule(ENGINE_GATEWAY, "filter", "FORWARD", "deny",
                   destinations=tuple(_host(g) for g in [*sorted(lab.gateways.values()),
                                                         *sorted(lab.gateways6.values())]),
                   summary="the engine's host on lab networks: never part of the lab"),
    ]
    for forward in spec.forwards:
        target = _target_address(lab, forward)
        rules.append(PolicyRule(publish_name(forward), "filter", "FORWARD", "allow", forward.proto,
                                destinations=(_host(target),), ports=((forward.to_port or forward.port,) * 2,),
                                states=("DNAT",), summary=f"port {forward.port} published to {forward.to}"))
    rules += [_intent_rule(lab, rule) for rule in spec.rules]
    rules.append(PolicyRule("default-deny", "filter", "FORWARD", "deny",
                            summary="forwarded traffic no rule allowed"))
    return rules


def _input_chain() -> list[PolicyRule]:
    # The firewall's own services: none. It answers ping and traceroute (so paths can be
    # seen) and nothing else; `docker exec` does not use the network, so nothing locks the
    # runtime out.
    return [
        PolicyRule("input-loopback", "filter", "INPUT", "allow", in_interface="lo", summary="loopback"),
        PolicyRule("input-established", "filter", "INPUT", "allow", states=("ESTABLISHED", "RELATED"),
                   summary="replies to the firewall's own traffic"),
        PolicyRule("input-icmp", "filter", "INPUT", "allow", "icmp", summary="ping and ICMP errors"),
        PolicyRule("input-traceroute", "filter", "INPUT", "allow", "udp", ports=TRACEROUTE_PORTS,
                   summary="UDP traceroute probes (answered with port-unreachable)"),
        PolicyRule("input-default-deny", "filter", "INPUT", "deny", summary="anything else to the firewall"),
    ]


def _nat_rules(lab: Lab, node: str) -> list[PolicyRule]:
    spec = lab.spec.nodes[node]
    own = tuple(_host(a) for i in lab.instances_of(node) for a in i.addresses.values())
    rules = []
    for forward in spec.forwards:
        target = _target_address(lab, forward)
        to_port = forward.to_port or forward.port
        rules.append(PolicyRule(publish_name(forward), "nat", "PREROUTING", "dnat", forward.proto,
                                destinations=own, ports=((forward.port, forward.port),),
                                to_destination=f"{target}:{to_port}",
                                summary=f"publish port {forward.port} on {forward.to}:{to_port}"))
    for network in spec.masquerade:
        declared = lab.spec.networks[network]
        # One rule a family: "leaving this network" is said of each family's own prefix.
        for subnet in (declared.subnet, *([declared.subnet6] if declared.subnet6 else [])):
            rules.append(PolicyRule(f"{MASQUERADE_PREFIX}{network}", "nat", "POSTROUTING", "masquerade",
                                    sources=(subnet,), not_destination=subnet,
                                    summary=f"{network} leaves with this router's address"))
    return rules


def node_policy(lab: Lab, node: str) -> list[PolicyRule]:
    """Every rule of a router or firewall node, in the order the kernel evaluates each chain.
    Routers forward everything: they only get NAT rules."""
    kind = lab.spec.nodes[node].kind
    filter_rules = _forward_chain(lab, node) + _input_chain() if registry.is_a(kind, PACKET_FILTER) else []
    return filter_rules + _nat_rules(lab, node)


def chain(policy: list[PolicyRule], name: str) -> list[PolicyRule]:
    return [rule for rule in policy if rule.chain == name]


def decide(policy: list[PolicyRule], flow: Flow, chain_name: str = "FORWARD") -> PolicyRule | None:
    """The rule that decides a new flow in a filter chain: the first that matches.
    None when the node filters nothing (a plain router)."""
    rules = [r for r in chain(policy, chain_name) if r.table == "filter"]
    for rule in rules:
        if rule.matches_new(flow):
            return rule
    return None


def ports_text(ports: tuple[tuple[int, int], ...] | None) -> str:
    if not ports:
        return "all"
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports)
