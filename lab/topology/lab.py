"""The resolved lab: the validated spec plus everything derived from it.

This is what the planner consumes: replicas expanded into instances, every
instance with its addresses, and the engine gateway of every network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Mapping

from lab.topology.model import CLIENT_KIND, RESOLVER_KIND, Impair, TopologySpec
from lab.topology.names import replica_names


@dataclass(frozen=True)
class Instance:
    """One container-to-be: a node, or one replica of it."""

    name: str
    node: str
    kind: str
    addresses: Mapping[str, IPv4Address]
    replica: int | None = None
    addresses6: Mapping[str, IPv6Address] = field(default_factory=dict)   # networks with subnet6

    def address_on(self, network: str) -> IPv4Address:
        return self.addresses[network]

    def all_addresses(self) -> list[IPv4Address | IPv6Address]:
        """Every address of the instance, IPv4 first."""
        return [*self.addresses.values(), *self.addresses6.values()]

    @property
    def first_address6(self) -> IPv6Address | None:
        return next(iter(self.addresses6.values()), None)

    @property
    def first_address(self) -> IPv4Address:
        return next(iter(self.addresses.values()))


@dataclass(frozen=True)
class Lab:
    spec: TopologySpec
    file: str
    instances: tuple[Instance, ...]
    gateways: Mapping[str, IPv4Address] = field(default_factory=dict)
    gateways6: Mapping[str, IPv6Address] = field(default_factory=dict)
    copy: int = 0        # a classroom copy's number (lab/topology/copies.py); 0: the lab itself
    owner: str = ""      # who a classroom copy belongs to (its roster line)

    @property
    def name(self) -> str:
        return self.spec.name

    def instance(self, name: str) -> Instance:
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)

    def instances_of(self, node: str) -> list[Instance]:
        return [i for i in self.instances if i.node == node]

    def instance_names(self) -> list[str]:
        return [i.name for i in self.instances]

    def resolver_of(self, node: str) -> str | None:
        """The dns-resolver node a node asks: its own `resolver:`, else the lab's only one
        (a resolver asks itself). None when there is no such resolver."""
        spec = self.spec.nodes[node]
        if spec.kind == RESOLVER_KIND:
            return node
        resolvers = self._resolvers
        return spec.resolver or (resolvers[0] if len(resolvers) == 1 else None)

    def impairments(self) -> dict[tuple[str, str], Impair]:
        """(instance, network) -> what that link does to what the instance sends: the network's
        `impair:`, with the node's own for that network said over it field by field. Links with
        none are left out."""
        declared = {}
        for instance in self.instances:
            node = self.spec.nodes[instance.node]
            for network in instance.addresses:
                layers = [self.spec.networks[network].impair, node.impair.get(network)]
                fields = {k: v for layer in layers if layer for k, v in layer.model_dump(exclude_none=True).items()}
                if fields:
                    declared[(instance.name, network)] = Impair(**fields)
        return declared

    def default_client(self) -> str | None:
        """The node a request, lookup or check runs from when none is named (--from, `from:`):
        the first instance of the first client node, in the topology file's order. The one
        rule `lab trace`, `lab dig` and `lab check` share; None when the lab has no client."""
        return next((i.name for i in self.instances if i.kind == CLIENT_KIND), None)

    @cached_property
    def _resolvers(self) -> tuple[str, ...]:
        # Computed once: resolver_of is asked for every node, and labs can have thousands.
        return tuple(name for name, other in self.spec.nodes.items() if other.kind == RESOLVER_KIND)


def build_lab(spec: TopologySpec, file: str, addresses: dict, gateways: dict,
              addresses6: dict | None = None, gateways6: dict | None = None) -> Lab:
    instances = []
    addresses6 = addresses6 or {}
    for name, node in spec.nodes.items():
        replicas = getattr(node, "replicas", 1)
        for index, instance in enumerate(replica_names(name, replicas), start=1):
            ordered = {net: addresses[instance][net] for net in node.networks}
            ordered6 = {net: addresses6[instance][net] for net in node.networks
                        if net in addresses6.get(instance, {})}
            instances.append(Instance(instance, name, node.kind, MappingProxyType(ordered),
                                      index if replicas > 1 else None, MappingProxyType(ordered6)))
    return Lab(spec, file, tuple(instances), MappingProxyType(dict(gateways)),
               MappingProxyType(dict(gateways6 or {})))
