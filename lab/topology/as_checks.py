"""The autonomous systems of a topology must hang together: every `as:` names a declared AS,
relations name ASes, AS numbers are unique, BGP tweaks name a neighbour router of another AS,
and route checks ask a BGP router about a network, expecting ASes that exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.topology.autonomy import expected_as_path, route_prefix
from lab.topology.model import FIREWALL_KIND, FORWARDING_KINDS, Check
from lab.topology.structure import suggest

if TYPE_CHECKING:
    from lab.topology.checks import Checker


def check_autonomous_systems(checker: "Checker") -> None:
    spec = checker.spec
    systems = spec.autonomous_systems
    numbers: dict[int, str] = {}
    for name, system in systems.items():
        if system.number in numbers:
            checker.error(("autonomous_systems", name, "number"), f"AS number {system.number} is already "
                          f"'{numbers[system.number]}''s: every AS needs its own number")
        numbers.setdefault(system.number, name)
        for relation in ("providers", "peers"):
            for i, other in enumerate(getattr(system, relation)):
                if other not in systems or other == name:
                    checker.error(("autonomous_systems", name, relation, i), f"'{other}' is not another "
                                  f"autonomous system{suggest(other, systems)} (declared: {', '.join(systems)})")
    for name, network in spec.networks.items():
        if network.as_ is not None and network.as_ not in systems:
            checker.error(("networks", name, "as"), _unknown(network.as_, systems))
    for name in checker.nodes_of(*FORWARDING_KINDS):
        _check_router(checker, name)


def _unknown(name: str, systems) -> str:
    declared = ", ".join(systems) or "none: add an autonomous_systems: section"
    return f"unknown autonomous system '{name}'{suggest(name, systems)} (declared: {declared})"


def _check_router(checker: "Checker", name: str) -> None:
    spec = checker.spec
    node = spec.nodes[name]
    if node.as_ is not None and node.as_ not in spec.autonomous_systems:
        checker.error(("nodes", name, "as"), _unknown(node.as_, spec.autonomous_systems))
        return
    if node.as_ is not None and node.kind == FIREWALL_KIND:
        checker.error(("nodes", name, "as"), "a firewall cannot run BGP yet (its input rules would drop "
                      "BGP, OSPF and BFD): put a router with `as:` in front of it and keep the firewall static")
        return
    if node.route_server:
        _check_route_server(checker, name)
    if node.bgp and node.as_ is None:
        checker.error(("nodes", name, "bgp"), "bgp tweaks need the router in an autonomous system: "
                      "add `as: NAME`", at_key=True)
        return
    served = {net for other in spec.nodes.values() if getattr(other, "route_server", False) for net in other.networks}
    for neighbour in node.bgp:
        other = spec.nodes.get(neighbour)
        shares = other is not None and set(other.networks) & set(node.networks)
        if other is None or other.kind not in FORWARDING_KINDS or getattr(other, "as_", None) in (None, node.as_) \
                or not shares:
            checker.error(("nodes", name, "bgp", neighbour), f"'{neighbour}' is not a BGP neighbour of "
                          f"{name}: name a router of another AS on one of its networks", at_key=True)
        elif shares <= served and not (node.route_server or other.route_server):
            checker.error(("nodes", name, "bgp", neighbour), f"{name} hears '{neighbour}' only through the "
                          f"route server on {', '.join(sorted(shares))}: name the route server instead",
                          at_key=True)


def _check_route_server(checker: "Checker", name: str) -> None:
    node = checker.spec.nodes[name]
    if node.as_ is None:
        checker.error(("nodes", name, "route_server"), "a route server speaks BGP: give it its own "
                      "autonomous system with `as: NAME` (its number never shows in the members' paths)",
                      at_key=True)
    shared = [net for net in node.networks if checker.spec.networks.get(net) is not None
              and checker.spec.networks[net].as_ is None]
    if len(node.networks) != 1 or len(shared) != 1:
        checker.error(("nodes", name, "networks"), "a route server sits on exactly one shared network "
                      "(an exchange's, without `as:`), where the members it serves are", at_key=True)


def check_route(checker: "Checker", path: tuple, check: Check) -> None:
    spec = checker.spec
    router = spec.nodes.get(check.from_ or "")
    if router is None or router.kind not in FORWARDING_KINDS or router.as_ is None:
        checker.error((*path, "from") if check.from_ else path, "a route check needs `from:` a router "
                      "in an autonomous system (it is asked for its BGP route)")
    if check.family == 6 and check.route in spec.networks and spec.networks[check.route].subnet6 is None:
        checker.error((*path, "route"), f"network '{check.route}' has no IPv6 prefix: add `subnet6:` to it, "
                      "or leave `family: 6` out")
    elif route_prefix(_Spec(spec), check.route, check.family) is None:
        checker.error((*path, "route"), f"'{check.route}' is neither a network{suggest(check.route, spec.networks)} "
                      "nor a prefix like 198.18.35.0/24" + (" (of the family asked)" if check.family else ""))
    if check.expect is not None and expected_as_path(_Spec(spec), check.expect) is None:
        checker.error((*path, "expect"), f"'{check.expect}' is not an AS path: write AS names "
                      f"({', '.join(spec.autonomous_systems)}) or numbers, nearest first")


class _Spec:
    """Just enough of a Lab (its spec) for the pure helpers, before addresses exist."""

    def __init__(self, spec):
        self.spec = spec
