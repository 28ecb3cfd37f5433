"""Each node's routes, computed from the topology graph.

Networks are joined by forwarding nodes (routers and firewalls). For every
network a node is not on, the route goes via the first router of a shortest
path. When the lab names its `internet` network, nodes not on it also get a
default route toward it; nodes on it get none, so nothing ever leaves the lab.
"""

from __future__ import annotations

from collections import deque

from lab.topology.autonomy import routed_by_frr
from lab.topology.lab import Instance, Lab
from lab.topology.model import FORWARDING_KINDS


def first_hops(lab: Lab, source: Instance) -> dict[str, str]:
    """network -> address of the first router toward it, for networks source is not on."""
    routers = [i for i in lab.instances if i.kind in FORWARDING_KINDS and i.name != source.name]
    hops: dict[str, str] = {}
    queue: deque[tuple[str, str | None]] = deque((net, None) for net in source.addresses)
    seen = set(source.addresses)
    while queue:
        network, gateway = queue.popleft()
        for router in routers:
            if network not in router.addresses:
                continue
            via = gateway or str(router.addresses[network])
            for onward in router.addresses:
                if onward not in seen:
                    seen.add(onward)
                    hops[onward] = via
                    queue.append((onward, via))
    return hops


def routes_for(lab: Lab, instance: Instance) -> list[str]:
    """`ip route replace` arguments for one instance, default route first. None for a
    router in an autonomous system: FRR fills its table (lab/plan/frr.py)."""
    return [] if routed_by_frr(lab, instance) else graph_routes(lab, instance)


def graph_routes(lab: Lab, instance: Instance) -> list[str]:
    """The routes the graph alone gives (shortest paths), whatever routes the node."""
    hops = first_hops(lab, instance)
    lines = []
    internet = lab.spec.internet
    if internet and internet not in instance.addresses and internet in hops:
        lines.append(f"default via {hops[internet]}")
    for network, via in hops.items():
        lines.append(f"{lab.spec.networks[network].subnet} via {via}")
    return lines
