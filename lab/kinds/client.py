"""client: a machine people use (curl, dig, traceroute), trusting the lab CA."""

from __future__ import annotations

from lab.kinds.registry import LAB_CA, TRAFFIC_SOURCE, Kind, register
from lab.plan.model import Probe
from lab.topology import Instance, Lab


def _resolver(lab: Lab, instance: Instance) -> list[Instance]:
    resolver = lab.resolver_of(instance.node)
    return list(lab.instances_of(resolver)) if resolver else []


KIND = register(Kind(
    name="client", folder="client", stage=4,
    probe=Probe(("sh", "-c", "test -e /run/lab/init-done && "
                 "{ test ! -s /lab/ca.crt || test -e /run/lab/ca-trusted; }"),
                60, "routes, resolver and the lab CA installed"),
    secrets=frozenset({LAB_CA}), needs=_resolver,
    roles=frozenset({TRAFFIC_SOURCE}),
    colour="#4e79a7", shape="round",
))
