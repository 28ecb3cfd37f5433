"""Each node's routes, computed from the topology graph.

Networks are joined by forwarding nodes (routers and firewalls). For every
network a node is not on, the route goes via the first router of a shortest
path. When the lab names its `internet` network, nodes not on it also get a
default route toward it; nodes on it get none, so nothing ever leaves the lab.

IPv6 takes the same paths: a dual-stack node gets, beside each IPv4 route, the route to
the network's IPv6 prefix via the same router's IPv6 address on the network they share.
"""

from __future__ import annotations

from collections import deque

from lab.topology.autonomy import routed_by_frr
from lab.topology.lab import Instance, Lab
from lab.topology.model import FORWARDING_KINDS


def first_hops(lab: Lab, source: Instance) -> dict[str, str]:
    """network -> address of the first router toward it, for networks source is not on."""
    return {network: str(router.addresses[shared])
            for network, (router, shared) in first_routers(lab, source).items()}


def first_routers(lab: Lab, source: Instance) -> dict[str, tuple[Instance, str]]:
    """network -> (the first router toward it, the network source shares with that router)."""
    routers = [i for i in lab.instances if i.kind in FORWARDING_KINDS and i.name != source.name]
    hops: dict[str, tuple[Instance, str]] = {}
    queue: deque[tuple[str, tuple[Instance, str] | None]] = deque((net, None) for net in source.addresses)
    seen = set(source.addresses)
    while queue:
        network, gateway = queue.popleft()
        for router in routers:
            if network not in router.addresses:
                continue
            via = gateway or (router, network)
            for onward in router.addresses:
                if onward not in seen:
                    seen.add(onward)
                    hops[onward] = via
                    queue.append((onward, via))
    return hops


def routes_for(lab: Lab, instance: Instance) -> list[str]:
    """`ip route replace` arguments for one instance, default route first, IPv4 then IPv6.
    None for a router in an autonomous system: FRR fills its table (lab/plan/frr.py)."""
    if routed_by_frr(lab, instance):
        return []
    return graph_routes(lab, instance) + graph_routes6(lab, instance)


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


def graph_routes6(lab: Lab, instance: Instance) -> list[str]:
    """The IPv6 routes of a dual-stack instance: the IPv4 routes' paths, to IPv6 prefixes."""
    if not instance.addresses6:
        return []
    hops = {network: str(router.addresses6[shared])
            for network, (router, shared) in first_routers(lab, instance).items()
            if shared in router.addresses6}
    lines = []
    internet = lab.spec.internet
    if internet and internet not in instance.addresses and internet in hops:
        lines.append(f"default via {hops[internet]}")
    for network, via in hops.items():
        prefix = lab.spec.networks[network].subnet6
        if prefix is not None:
            lines.append(f"{prefix} via {via}")
    return lines
