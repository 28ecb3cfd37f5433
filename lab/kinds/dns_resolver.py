"""dns-resolver: Unbound, recursive from the lab's own roots; every other node asks it."""

from __future__ import annotations

from lab.kinds.registry import RECURSIVE_RESOLVER, ROOT_SERVER, Kind, is_a, register
from lab.plan.dns import render_resolver
from lab.plan.model import Probe
from lab.topology import Instance, Lab


def _roots(lab: Lab, instance: Instance) -> list[Instance]:
    # It primes from the root servers at start: they must answer first.
    return [i for i in lab.instances if is_a(i.kind, ROOT_SERVER)]


KIND = register(Kind(
    name="dns-resolver", folder="resolver", stage=2,
    # ready when it answers the root's SOA recursively (a lab root replied)
    probe=Probe(("/usr/local/bin/lab-unbound-ready",), 60, "the root's SOA resolved recursively"),
    render=render_resolver, needs=_roots, roles=frozenset({RECURSIVE_RESOLVER}),
    colour="#9c755f", shape="round",
))
