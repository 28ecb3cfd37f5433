"""The picture of a topology as plain data: its networks in the order of the journey, its
nodes with their addresses, and the autonomous systems that own them.

Pure: computed from the topology file alone (no running lab). Networks are
ordered by how far they are from the clients, so the picture reads like the
journey: home first, the site last. Where things go on a page is
lab/graph/layout.py's business.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from lab.topology.model import IMPAIR_FIELDS
from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER, TRAFFIC_SOURCE
from lab.topology import Lab


def kind_colours() -> dict[str, str]:
    """Every registered kind's colour, in the order of the journey (clients first)."""
    kinds = sorted(registry.all_kinds(), key=lambda kind: (-kind.stage, kind.name))
    return {kind.name: kind.colour for kind in kinds}


def kind_shape(kind: str) -> str:
    return registry.get(kind).shape


def _forwards(kind: str) -> bool:
    return registry.get(kind).forwards


@dataclass(frozen=True)
class GraphNetwork:
    name: str
    subnet: str
    impair: str = ""          # what its links do to packets, as declared (`impair:`), e.g. "rate 3mbit"
    system: str = ""          # the AS that owns it (an exchange's: its route server's; "": none, e.g. a home)


def impair_text(spec) -> str:
    """A declared impairment in a few words: "rate 3mbit, delay 20ms"."""
    return ", ".join(f"{name} {getattr(spec, name)}" for name in IMPAIR_FIELDS if getattr(spec, name))


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    addresses: dict[str, str]
    note: str = ""
    forwards: bool = False     # joins its networks (a router or firewall): drawn between them
    system: str = ""           # a router's autonomous system ("": none)


@dataclass(frozen=True)
class GraphSystem:
    name: str
    number: int
    description: str = ""


@dataclass
class Graph:
    lab: str
    networks: list[GraphNetwork] = field(default_factory=list)
    nodes: list[GraphNode] = field(default_factory=list)
    systems: dict[str, GraphSystem] = field(default_factory=dict)

    @property
    def firewalls(self) -> list[GraphNode]:
        return [n for n in self.nodes if registry.is_a(n.kind, PACKET_FILTER)]


def _network_order(lab: Lab) -> list[str]:
    """Breadth-first from the first client's networks across routers; leftovers keep file order."""
    neighbours: dict[str, set[str]] = {name: set() for name in lab.spec.networks}
    for instance in lab.instances:
        if _forwards(instance.kind):
            for a in instance.addresses:
                neighbours[a] |= set(instance.addresses) - {a}
    # from the first client's networks only: starting from every client's at once would put far
    # apart networks next to each other and stretch the routers' wires between them
    sources = [i for i in lab.instances if registry.is_a(i.kind, TRAFFIC_SOURCE)]
    starts = list(sources[0].addresses) if sources else []
    order: list[str] = []
    queue = deque(starts or list(lab.spec.networks)[:1])
    while queue or len(order) < len(neighbours):
        if not queue:
            queue.append(next(n for n in lab.spec.networks if n not in order))
        network = queue.popleft()
        if network in order:
            continue
        order.append(network)
        queue.extend(sorted(neighbours[network] - set(order), key=list(lab.spec.networks).index))
    return order


def _node_note(lab: Lab, kind: str, name: str) -> str:
    node = lab.spec.nodes[name]
    notes = [f"{network}: {impair_text(spec)}" for network, spec in node.impair.items()]
    if registry.is_a(kind, PACKET_FILTER):
        notes.insert(0, f"{len(node.rules)} rules, default deny")
    elif getattr(node, "masquerade", []):
        notes.insert(0, f"NAT for {', '.join(node.masquerade)}")
    system = getattr(node, "as_", None)
    if system:   # a router in an autonomous system: which one, by number as BGP shows it
        role = "route server (not in paths) " if getattr(node, "route_server", False) else ""
        notes.append(f"{role}AS{lab.spec.autonomous_systems[system].number} {system}")
    return "; ".join(notes)


def _exchanges(lab: Lab) -> dict[str, str]:
    """A shared network with a route server on it -> the route server's AS (the exchange's own)."""
    return {network: node.as_ for node in lab.spec.nodes.values() if getattr(node, "route_server", False)
            and node.as_ for network in node.networks if not lab.spec.networks[network].as_}


def build_graph(lab: Lab) -> Graph:
    networks, exchanges = lab.spec.networks, _exchanges(lab)
    graph = Graph(lab.name, [GraphNetwork(n, str(networks[n].subnet),
                                          impair_text(networks[n].impair) if networks[n].impair else "",
                                          networks[n].as_ or exchanges.get(n, "")) for n in _network_order(lab)],
                  systems={name: GraphSystem(name, system.number, system.description)
                           for name, system in lab.spec.autonomous_systems.items()})
    for instance in lab.instances:
        spec = lab.spec.nodes[instance.node]
        graph.nodes.append(GraphNode(instance.name, instance.kind,
                                     {n: str(a) for n, a in instance.addresses.items()},
                                     _node_note(lab, instance.kind, instance.node),
                                     _forwards(instance.kind) and len(instance.addresses) > 1,
                                     getattr(spec, "as_", None) or ""))
    return graph
