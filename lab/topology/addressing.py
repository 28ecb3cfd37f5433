"""Give every node instance an address on each of its networks.

Addresses written in the file are kept. The rest are allocated the way
people number networks by hand: routers and firewalls from the bottom of the
subnet (.1, .2, ...), other nodes from .10 upward, so the layout stays
readable. The engine's host-side gateway takes the highest free address, off
everything the lab uses.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from lab.topology.errors import Problem
from lab.topology.ipv6 import allocate6
from lab.topology.model import FORWARDING_KINDS, TopologySpec
from lab.topology.names import replica_names
from lab.topology.yaml_source import Source

HOSTS_BEFORE_SERVERS = 10  # servers start at .10 on subnets large enough to leave room


class Allocator:
    """Free host addresses of one subnet, handed out lowest first from a starting offset.

    Pure arithmetic: nothing lists the subnet's addresses (a /8 has 16 million),
    and a cursor per search range remembers how far it is known to be full, so
    handing out N addresses costs about N steps, not N squared.
    """

    def __init__(self, subnet: IPv4Network, taken: set[IPv4Address]):
        self.subnet = subnet
        self.first = int(subnet.network_address)
        self.size = subnet.num_addresses
        self.taken = {int(a) for a in taken} | {self.first, self.first + self.size - 1}
        self.cursors: dict[tuple[int, int], int] = {}

    def _scan(self, low: int, high: int) -> IPv4Address | None:
        offset = self.cursors.get((low, high), low)
        while offset < high and self.first + offset in self.taken:
            offset += 1
        self.cursors[(low, high)] = offset
        if offset >= high:
            return None
        self.taken.add(self.first + offset)
        return IPv4Address(self.first + offset)

    def take(self, start_offset: int = 1) -> IPv4Address | None:
        last = self.size - 1   # the broadcast address's offset
        return self._scan(start_offset, last) or self._scan(1, min(start_offset, last))

    def take_highest(self) -> IPv4Address | None:
        value = self.first + self.size - 2
        while value > self.first and value in self.taken:
            value -= 1
        if value <= self.first:
            return None
        self.taken.add(value)
        return IPv4Address(value)


def allocate(spec: TopologySpec, source: Source) -> tuple[dict, dict, list[Problem]]:
    """Addresses per instance and network, the engine gateway per network, and problems
    (IPv4 only: allocate_dual adds IPv6)."""
    fixed: dict[str, dict[str, IPv4Address]] = {}
    for name, node in spec.nodes.items():
        for index, instance in enumerate(replica_names(name, getattr(node, "replicas", 1))):
            fixed[instance] = {net: address + index for net, address in node.networks.items()
                               if address is not None}
    allocators = {net: Allocator(network.subnet, {a for addrs in fixed.values()
                                                  for n, a in addrs.items() if n == net})
                  for net, network in spec.networks.items()}
    problems: list[Problem] = []
    ordered = sorted(spec.nodes.items(), key=lambda item: item[1].kind not in FORWARDING_KINDS)
    for name, node in ordered:
        start = 1 if node.kind in FORWARDING_KINDS else HOSTS_BEFORE_SERVERS
        for instance in replica_names(name, getattr(node, "replicas", 1)):
            for net in node.networks:
                if net in fixed[instance]:
                    continue
                allocator = allocators[net]
                address = allocator.take(start if allocator.subnet.num_addresses > 32 else 1)
                if address is None:
                    problems.append(source.problem(("nodes", name, "networks", net),
                                    f"network '{net}' ({allocator.subnet}) has no free address left "
                                    f"for {instance}: use a larger subnet"))
                    continue
                fixed[instance][net] = address
    gateways = {}
    for net, allocator in allocators.items():
        gateway = allocator.take_highest()
        if gateway is None:
            problems.append(source.problem(("networks", net, "subnet"), f"network '{net}' is full: "
                            "the engine needs one free address for its gateway; use a larger subnet"))
        else:
            gateways[net] = gateway
    return fixed, gateways, problems


def allocate_dual(spec: TopologySpec, source: Source) -> tuple[dict, dict, dict, dict, list[Problem]]:
    """IPv4 addresses and gateways, then IPv6 ones (derived from them), and every problem."""
    addresses, gateways, problems = allocate(spec, source)
    if problems:
        return addresses, gateways, {}, {}, problems
    addresses6, gateways6, clashes = allocate6(spec, addresses, gateways)
    return addresses, gateways, addresses6, gateways6, [source.problem(path, message)
                                                         for path, message in clashes]
