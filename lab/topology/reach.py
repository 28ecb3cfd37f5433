"""Which networks can talk to which, through the lab's routers and firewalls.

Two networks are joined when a forwarding node (router or firewall) sits on
both; joined networks form islands. Firewall rules may still block traffic:
this is only about whether a path exists at all.
"""

from __future__ import annotations

from lab.topology.model import FORWARDING_KINDS, TopologySpec


class Reachability:
    def __init__(self, spec: TopologySpec):
        self.spec = spec
        self.island: dict[str, str] = {name: name for name in spec.networks}
        for node in spec.nodes.values():
            if node.kind in FORWARDING_KINDS:
                known = [net for net in node.networks if net in self.island]
                for net in known[1:]:
                    self._join(known[0], net)

    def _find(self, net: str) -> str:
        while self.island[net] != net:
            self.island[net] = self.island[self.island[net]]
            net = self.island[net]
        return net

    def _join(self, a: str, b: str) -> None:
        self.island[self._find(a)] = self._find(b)

    def networks_reach(self, a: str, b: str) -> bool:
        return a in self.island and b in self.island and self._find(a) == self._find(b)

    def node_reaches_node(self, source: str, target: str) -> bool:
        a, b = self.spec.nodes.get(source), self.spec.nodes.get(target)
        if a is None or b is None:
            return True  # an unknown name is reported on its own; don't pile on
        mine = [net for net in a.networks if net in self.island]
        theirs = [net for net in b.networks if net in self.island]
        if not mine or not theirs:
            return True  # unknown networks are reported on their own
        return any(self.networks_reach(x, y) for x in mine for y in theirs)
