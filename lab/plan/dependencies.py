"""What each node needs ready before it starts: a dependency graph, not stages.

A node waits only for the nodes its own start-up and readiness probe use:
each kind says which (lab/kinds/: the resolver needs the root servers it
primes from, for example); and for each of those, the routers and firewalls its
packets cross on the way there (followed hop by hop along the routes the
planner computed, so the graph and the routing agree). Everything else starts
at once: routers, DNS servers and the database need nothing.
"""

from __future__ import annotations

from lab.kinds import registry
from lab.topology.routes import first_hops
from lab.topology import Instance, Lab


def _owner_of(lab: Lab, address: str) -> Instance | None:
    return next((i for i in lab.instances if address in {str(a) for a in i.addresses.values()}), None)


def routers_on_route(lab: Lab, source: Instance, target: Instance) -> list[str]:
    """The forwarding nodes a packet from source to target crosses, in order (routes as planned)."""
    goal = set(target.addresses)
    current, crossed = source, []
    for _ in lab.instances:   # a route never crosses more routers than there are nodes
        if set(current.addresses) & goal:
            return crossed
        hops = first_hops(lab, current)
        network = next((net for net in target.addresses if net in hops), None)
        router = _owner_of(lab, hops[network]) if network else None
        if router is None or router.name in crossed:
            return crossed   # unreachable (validation reports it) or a loop: nothing more to wait for
        crossed.append(router.name)
        current = router
    return crossed


def dependencies(lab: Lab, instance: Instance) -> tuple[str, ...]:
    """Names of the instances that must be ready before this one starts, sorted."""
    needed: set[str] = set()
    for service in registry.get(instance.kind).needs(lab, instance):
        if service.name != instance.name:
            needed.add(service.name)
            needed.update(routers_on_route(lab, instance, service))
    return tuple(sorted(needed))
