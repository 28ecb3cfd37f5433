"""The picture of a topology as plain data: columns of networks, nodes placed between them.

Pure: computed from the topology file alone (no running lab). Networks are
ordered by how far they are from the clients, so the picture reads like the
journey: home on the left, the site on the right. Forwarding nodes sit between
the networks they join; other nodes beside their network.
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
    column: int
    impair: str = ""          # what its links do to packets, as declared (`impair:`), e.g. "rate 3mbit"


def impair_text(spec) -> str:
    """A declared impairment in a few words: "rate 3mbit, delay 20ms"."""
    return ", ".join(f"{name} {getattr(spec, name)}" for name in IMPAIR_FIELDS if getattr(spec, name))


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    addresses: dict[str, str]
    column: float              # between networks for routers, beside them for others
    note: str = ""


@dataclass
class Graph:
    lab: str
    networks: list[GraphNetwork] = field(default_factory=list)
    nodes: list[GraphNode] = field(default_factory=list)

    @property
    def firewalls(self) -> list[GraphNode]:
        return [n for n in self.nodes if registry.is_a(n.kind, PACKET_FILTER)]


def _network_order(lab: Lab) -> list[str]:
    """Breadth-first from the clients' networks across routers; leftovers keep file order."""
    neighbours: dict[str, set[str]] = {name: set() for name in lab.spec.networks}
    for instance in lab.instances:
        if _forwards(instance.kind):
            for a in instance.addresses:
                neighbours[a] |= set(instance.addresses) - {a}
    starts = [net for i in lab.instances if registry.is_a(i.kind, TRAFFIC_SOURCE) for net in i.addresses]
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
        notes.append(f"AS{lab.spec.autonomous_systems[system].number} {system}")
    return "; ".join(notes)


def build_graph(lab: Lab) -> Graph:
    order = _network_order(lab)
    column = {name: index for index, name in enumerate(order)}
    graph = Graph(lab.name, [GraphNetwork(n, str(lab.spec.networks[n].subnet), column[n],
                                          impair_text(lab.spec.networks[n].impair) if lab.spec.networks[n].impair
                                          else "") for n in order])
    for instance in lab.instances:
        columns = [column[n] for n in instance.addresses]
        if _forwards(instance.kind) and len(columns) > 1:
            place = (min(columns) + max(columns)) / 2 if len(columns) == 2 else min(columns) + 0.5
        else:
            place = columns[0]
        note = _node_note(lab, instance.kind, instance.node)
        graph.nodes.append(GraphNode(instance.name, instance.kind,
                                     {n: str(a) for n, a in instance.addresses.items()}, place, note))
    return graph
