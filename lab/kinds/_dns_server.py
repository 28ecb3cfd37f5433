"""What the authoritative DNS servers (root, TLD, domain) share: BIND, one image, one probe."""

from __future__ import annotations

from lab.kinds.registry import AUTHORITATIVE_DNS, Kind
from lab.plan.dns import render_dns_server
from lab.plan.model import Probe

# Ready when it answers every zone it holds (SOA, AA flag set).
AUTHORITATIVE = Probe(("/usr/local/bin/lab-dns-ready",), 60, "every zone's SOA answered with AA")


def dns_server(name: str, *roles: str) -> Kind:
    return Kind(name=name, folder="dns", stage=1, probe=AUTHORITATIVE, render=render_dns_server,
                roles=frozenset({AUTHORITATIVE_DNS, *roles}), colour="#b07aa1", shape="round")
