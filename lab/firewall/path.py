"""The path a flow takes through the lab's routers and firewalls, with NAT applied.

Walks the same routes the planner installs (lab.topology.routes): from the source,
each hop is the gateway its routing table names for the destination, until a
node sits on the destination's network. Along the way, a router's port forward
rewrites the destination (DNAT) and its masquerade rewrites the source, exactly
as its nat table does: a firewall behind home-router sees the router's address,
never the laptop's.

A flow has one family, the destination's: over IPv6 the walk uses the nodes' IPv6
addresses, the networks' IPv6 prefixes and the IPv6 routes (the same routers), and
port forwards do not apply (the nat table of ip6tables has no DNAT line: a forward
names its target's IPv4 address).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Callable, Mapping, Optional

from lab.errors import LabError
from lab.firewall.policy import Flow
from lab.topology.routes import graph_routes, graph_routes6
from lab.topology.lab import Instance, Lab
from lab.topology.model import FORWARDING_KINDS

MAX_HOPS = 32
# (node, destination) -> the gateway it uses: the running node's own answer (lab trace asks
# routers that run BGP/OSPF), else the routes the planner computes.
Address = IPv4Address | IPv6Address
NextHop = Callable[[Instance, Address], Optional[Address]]


def addresses_in(instance: Instance, family: int) -> Mapping[str, Address]:
    """network -> the instance's address there, of one family (4 or 6)."""
    return instance.addresses6 if family == 6 else instance.addresses


def _subnet(lab: Lab, network: str, family: int):
    declared = lab.spec.networks[network]
    return declared.subnet6 if family == 6 else declared.subnet


@dataclass(frozen=True)
class Hop:
    """A router or firewall a flow crosses, and the flow as that node's filter sees it."""

    instance: Instance
    flow: Flow                        # after this node's DNAT, before its masquerade
    arrives_on: str                   # network it comes in on
    leaves_on: str | None             # network it goes out on (None: it ends here)
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.instance.kind


@dataclass(frozen=True)
class FlowPath:
    source: Instance
    target: Instance
    flow: Flow                        # as the source sends it
    hops: tuple[Hop, ...] = ()
    ends_at: Instance | None = None   # who finally receives it
    delivered: Flow | None = None     # the flow as that receiver sees it
    notes: tuple[str, ...] = field(default_factory=tuple)


def address_owner(lab: Lab, address: Address) -> tuple[Instance, str] | None:
    """(the instance that holds address, the network it holds it on), or None: not the lab's."""
    for instance in lab.instances:
        for network, own in addresses_in(instance, address.version).items():
            if own == address:
                return instance, network
    return None



def _network_of(lab: Lab, instance: Instance, address: Address) -> str | None:
    for network in addresses_in(instance, address.version):
        if address in _subnet(lab, network, address.version):
            return network
    return None


def next_hop(lab: Lab, at: Instance, destination: Address) -> Address | None:
    """The gateway `at`'s routing table names for destination (longest prefix wins), in the
    destination's family. For a router in an autonomous system, the shortest way through the
    graph: what BGP/OSPF find when nothing is broken and no policy says otherwise (derived,
    not read)."""
    six = destination.version == 6
    best: tuple[int, Address] | None = None
    for line in (graph_routes6 if six else graph_routes)(lab, at):
        prefix, _, via = line.partition(" via ")
        network = ip_network(("::/0" if six else "0.0.0.0/0") if prefix == "default" else prefix)
        if destination in network and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, ip_address(via))
    return best[1] if best else None


def target_address(lab: Lab, source: Instance, target: Instance, family: int = 4) -> Address:
    """The address a source uses for a target in a family: one on a shared network, else its
    first. A LabError when the target has none of that family."""
    found = addresses_in(target, family)
    if not found:
        raise LabError(f"{target.name} has no IPv{family} address")
    for network, address in found.items():
        if network in addresses_in(source, family):
            return address
    return next(iter(found.values()))


def _dnat(lab: Lab, router: Instance, flow: Flow) -> tuple[Flow, str | None]:
    spec = lab.spec.nodes[router.node]
    if flow.destination.version == 6 or flow.destination not in router.addresses.values():
        return flow, None   # forwards are IPv4 only (their DNAT names the target's IPv4 address)
    for forward in getattr(spec, "forwards", []):
        if forward.proto == flow.proto and forward.port == flow.port:
            to = lab.instances_of(forward.to)[0]
            port = forward.to_port or forward.port
            note = f"{router.name} forwards port {forward.port} to {to.name} ({to.first_address}:{port})"
            return replace(flow, destination=to.first_address, port=port, dnat=True), note
    return flow, None


def _masquerade(lab: Lab, router: Instance, flow: Flow, leaves_on: str) -> tuple[Flow, str | None]:
    family = flow.source.version
    for network in getattr(lab.spec.nodes[router.node], "masquerade", []):
        subnet = _subnet(lab, network, family)
        if subnet is not None and flow.source in subnet and flow.destination not in subnet:
            new_source = addresses_in(router, family)[leaves_on]
            return replace(flow, source=new_source), (f"{router.name} masquerades {network}: the source "
                                                      f"{flow.source} becomes {new_source}")
    return flow, None


def _leave(lab: Lab, at: Instance, destination: Address,
           lookup: NextHop | None = None) -> tuple[str, Address | None]:
    """(network the packet leaves `at` on, gateway or None when the destination is on it)."""
    network = _network_of(lab, at, destination)
    if network:
        return network, None
    gateway = lookup(at, destination) if lookup else next_hop(lab, at, destination)
    network = _network_of(lab, at, gateway) if gateway else None
    if gateway is None or network is None:
        raise LabError(f"{at.name} has no route to {destination}")
    return network, gateway


def flow_path(lab: Lab, source: Instance, target: Instance, proto: str, port: int | None,
              lookup: NextHop | None = None, destination: Address | None = None,
              family: int = 4) -> FlowPath:
    """The way a flow goes from source to target: to `destination` when given (its family
    decides), else to the target's address of `family` the source would use."""
    if destination is None:
        destination = target_address(lab, source, target, family)
    if not addresses_in(source, destination.version):
        raise LabError(f"{source.name} has no IPv{destination.version} address")
    out_network, gateway = _leave(lab, source, destination, lookup)
    first = Flow(addresses_in(source, destination.version)[out_network], destination, proto, port)
    flow, hops, notes, here = first, [], [], source
    for _ in range(MAX_HOPS):
        owner = address_owner(lab, gateway or flow.destination)
        if owner is None:
            raise LabError(f"{here.name} sends {flow.destination} to {gateway or flow.destination}, "
                           "which is no lab node")
        receiver, arrives_on = owner
        if receiver.kind not in FORWARDING_KINDS:
            if gateway is not None:
                raise LabError(f"{here.name} routes {flow.destination} via {gateway}, which is no lab router")
            return FlowPath(source, target, first, tuple(hops), receiver, flow, tuple(notes))
        flow, dnat_note = _dnat(lab, receiver, replace(flow, dnat=False))
        if flow.destination in receiver.all_addresses():   # for the router itself: its INPUT
            hops.append(Hop(receiver, flow, arrives_on, None, tuple(filter(None, [dnat_note]))))
            return FlowPath(source, target, first, tuple(hops), receiver, flow, tuple(notes))
        leaves_on, gateway = _leave(lab, receiver, flow.destination, lookup)
        filtered = flow
        flow, masquerade_note = _masquerade(lab, receiver, flow, leaves_on)
        hop_notes = tuple(filter(None, [dnat_note, masquerade_note]))
        notes += hop_notes
        hops.append(Hop(receiver, filtered, arrives_on, leaves_on, hop_notes))
        here = receiver
    raise LabError(f"the path from {source.name} to {target.name} loops (more than {MAX_HOPS} hops)")
