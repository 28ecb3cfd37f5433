"""client: a machine people use (curl, dig, traceroute), trusting the lab CA, maybe with a DNS cache."""

from __future__ import annotations

from lab.kinds.registry import LAB_CA, TRAFFIC_SOURCE, Kind, register
from lab.plan.model import Probe
from lab.plan.stub import render_client
from lab.topology import Instance, Lab


def _resolver(lab: Lab, instance: Instance) -> list[Instance]:
    resolver = lab.resolver_of(instance.node)
    return list(lab.instances_of(resolver)) if resolver else []


KIND = register(Kind(
    name="client", folder="client", stage=4,
    probe=Probe(("sh", "-c", "test -e /run/lab/init-done && "
                 "{ test ! -s /lab/ca.crt || test -e /run/lab/ca-trusted; } && "
                 "{ test ! -e /lab/etc/dnsmasq.conf || test -e /run/lab/stub-ready; }"),
                60, "routes, resolver, the lab CA and its DNS cache (if any) installed"),
    secrets=frozenset({LAB_CA}), needs=_resolver, render=render_client,
    roles=frozenset({TRAFFIC_SOURCE}),
    colour="#4e79a7", shape="round",
))
