"""The picture of a topology as plain data: columns of networks, nodes placed between them.

Pure: computed from the topology file alone (no running lab). Networks are
ordered by how far they are from the clients, so the picture reads like the
journey: home on the left, the site on the right. Forwarding nodes sit between
the networks they join; other nodes beside their network.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from lab.topology import Lab
from lab.topology.model import FORWARDING_KINDS

KIND_COLOURS = {
    "client": "#4e79a7", "router": "#59a14f", "firewall": "#e15759", "dns-root": "#b07aa1",
    "dns-tld": "#b07aa1", "dns-auth": "#b07aa1", "dns-resolver": "#9c755f",
    "load-balancer": "#f28e2b", "app": "#edc948", "database": "#76b7b2",
}


@dataclass(frozen=True)
class GraphNetwork:
    name: str
    subnet: str
    column: int


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
        return [n for n in self.nodes if n.kind == "firewall"]


def _network_order(lab: Lab) -> list[str]:
    """Breadth-first from the clients' networks across routers; leftovers keep file order."""
    neighbours: dict[str, set[str]] = {name: set() for name in lab.spec.networks}
    for instance in lab.instances:
        if instance.kind in FORWARDING_KINDS:
            for a in instance.addresses:
                neighbours[a] |= set(instance.addresses) - {a}
    starts = [net for i in lab.instances if i.kind == "client" for net in i.addresses]
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


def _firewall_note(lab: Lab, name: str) -> str:
    node = lab.spec.nodes[name]
    return f"{len(node.rules)} rules, default deny"


def build_graph(lab: Lab) -> Graph:
    order = _network_order(lab)
    column = {name: index for index, name in enumerate(order)}
    graph = Graph(lab.name, [GraphNetwork(n, str(lab.spec.networks[n].subnet), column[n]) for n in order])
    for instance in lab.instances:
        columns = [column[n] for n in instance.addresses]
        if instance.kind in FORWARDING_KINDS and len(columns) > 1:
            place = (min(columns) + max(columns)) / 2 if len(columns) == 2 else min(columns) + 0.5
        else:
            place = columns[0]
        note = _firewall_note(lab, instance.node) if instance.kind == "firewall" else ""
        if instance.kind == "router" and getattr(lab.spec.nodes[instance.node], "masquerade", []):
            note = f"NAT for {', '.join(lab.spec.nodes[instance.node].masquerade)}"
        graph.nodes.append(GraphNode(instance.name, instance.kind,
                                     {n: str(a) for n, a in instance.addresses.items()}, place, note))
    return graph
