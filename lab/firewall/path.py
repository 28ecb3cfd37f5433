"""The path a flow takes through the lab's routers and firewalls, with NAT applied.

Walks the same routes the planner installs (lab.topology.routes): from the source,
each hop is the gateway its routing table names for the destination, until a
node sits on the destination's network. Along the way, a router's port forward
rewrites the destination (DNAT) and its masquerade rewrites the source, exactly
as its nat table does: a firewall behind home-router sees the router's address,
never the laptop's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network
from typing import Callable, Optional

from lab.errors import LabError
from lab.firewall.policy import Flow
from lab.topology.routes import graph_routes
from lab.topology.lab import Instance, Lab
from lab.topology.model import FORWARDING_KINDS

MAX_HOPS = 32
# (node, destination) -> the gateway it uses: the running node's own answer (lab trace asks
# routers that run BGP/OSPF), else the routes the planner computes.
NextHop = Callable[[Instance, IPv4Address], Optional[IPv4Address]]


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


def _owner(lab: Lab, address: IPv4Address) -> tuple[Instance, str] | None:
    for instance in lab.instances:
        for network, own in instance.addresses.items():
            if own == address:
                return instance, network
    return None


def _network_of(lab: Lab, instance: Instance, address: IPv4Address) -> str | None:
    for network in instance.addresses:
        if address in lab.spec.networks[network].subnet:
            return network
    return None


def next_hop(lab: Lab, at: Instance, destination: IPv4Address) -> IPv4Address | None:
    """The gateway `at`'s routing table names for destination (longest prefix wins). For a router
    in an autonomous system, the shortest way through the graph: what BGP/OSPF find when
    nothing is broken and no policy says otherwise (derived, not read)."""
    best: tuple[int, IPv4Address] | None = None
    for line in graph_routes(lab, at):
        prefix, _, via = line.partition(" via ")
        network = IPv4Network("0.0.0.0/0" if prefix == "default" else prefix)
        if destination in network and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, IPv4Address(via))
    return best[1] if best else None


def target_address(lab: Lab, source: Instance, target: Instance) -> IPv4Address:
    """The address a source uses for a target: one on a shared network, else its first."""
    for network, address in target.addresses.items():
        if network in source.addresses:
            return address
    return target.first_address


def _dnat(lab: Lab, router: Instance, flow: Flow) -> tuple[Flow, str | None]:
    spec = lab.spec.nodes[router.node]
    if flow.destination not in router.addresses.values():
        return flow, None
    for forward in getattr(spec, "forwards", []):
        if forward.proto == flow.proto and forward.port == flow.port:
            to = lab.instances_of(forward.to)[0]
            port = forward.to_port or forward.port
            note = f"{router.name} forwards port {forward.port} to {to.name} ({to.first_address}:{port})"
            return replace(flow, destination=to.first_address, port=port, dnat=True), note
    return flow, None


def _masquerade(lab: Lab, router: Instance, flow: Flow, leaves_on: str) -> tuple[Flow, str | None]:
    for network in getattr(lab.spec.nodes[router.node], "masquerade", []):
        subnet = lab.spec.networks[network].subnet
        if flow.source in subnet and flow.destination not in subnet:
            new_source = router.addresses[leaves_on]
            return replace(flow, source=new_source), (f"{router.name} masquerades {network}: the source "
                                                      f"{flow.source} becomes {new_source}")
    return flow, None


def _leave(lab: Lab, at: Instance, destination: IPv4Address,
           lookup: NextHop | None = None) -> tuple[str, IPv4Address | None]:
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
              lookup: NextHop | None = None) -> FlowPath:
    destination = target_address(lab, source, target)
    out_network, gateway = _leave(lab, source, destination, lookup)
    first = Flow(source.addresses[out_network], destination, proto, port)
    flow, hops, notes, here = first, [], [], source
    for _ in range(MAX_HOPS):
        owner = _owner(lab, gateway or flow.destination)
        if owner is None:
            raise LabError(f"{here.name} sends {flow.destination} to {gateway or flow.destination}, "
                           "which is no lab node")
        receiver, arrives_on = owner
        if receiver.kind not in FORWARDING_KINDS:
            if gateway is not None:
                raise LabError(f"{here.name} routes {flow.destination} via {gateway}, which is no lab router")
            return FlowPath(source, target, first, tuple(hops), receiver, flow, tuple(notes))
        flow, dnat_note = _dnat(lab, receiver, replace(flow, dnat=False))
        if flow.destination in receiver.addresses.values():   # for the router itself: its INPUT
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
