"""What differs between node kinds: image, start stage, privileges, readiness.

One table, so that adding a kind means adding a row, not editing the runtime.
Stages encode the dependency order: the network path first, then DNS servers
and the database, then the resolver and apps, then the load balancer, and
clients last.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.plan.model import Probe

INIT_DONE = ("test", "-e", "/run/lab/init-done")
RULES_LOADED = ("test", "-e", "/run/lab/rules-loaded")   # services/router/lab-firewall-load


def dns_answers(port: int = 53) -> Probe:
    # dig exits 0 on any answer (even REFUSED) and 9 when nobody replied.
    return Probe(("dig", "+time=1", "+tries=1", "-p", str(port), "@127.0.0.1", ".", "SOA"),
                 timeout=60, what="a DNS query answered on port 53")


# A DNS server is ready when it answers every zone it holds (SOA, AA flag set);
# the resolver when it answers the root's SOA recursively (a lab root replied).
AUTHORITATIVE = Probe(("/usr/local/bin/lab-dns-ready",), 60, "every zone's SOA answered with AA")
RECURSIVE = Probe(("/usr/local/bin/lab-unbound-ready",), 60, "the root's SOA resolved recursively")


@dataclass(frozen=True)
class KindTraits:
    service: str
    stage: int
    probe: Probe
    capabilities: tuple[str, ...] = ()
    forwards: bool = False
    data_volume: str | None = None   # mount path of the node's named data volume


KIND_TRAITS: dict[str, KindTraits] = {
    "router": KindTraits("router", 0, Probe(RULES_LOADED, 30, "routes and NAT rules installed"),
                         ("NET_ADMIN",), forwards=True),
    "firewall": KindTraits("router", 0, Probe(RULES_LOADED, 30, "routes and rules installed"),
                           ("NET_ADMIN",), forwards=True),
    "dns-root": KindTraits("dns", 1, AUTHORITATIVE),
    "dns-tld": KindTraits("dns", 1, AUTHORITATIVE),
    "dns-auth": KindTraits("dns", 1, AUTHORITATIVE),
    "database": KindTraits("database", 1,
                           Probe(("pg_isready", "-q", "-h", "127.0.0.1"), 120, "pg_isready"),
                           data_volume="/var/lib/postgresql/data"),
    "dns-resolver": KindTraits("resolver", 2, RECURSIVE),
    "app": KindTraits("app", 2, Probe(("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:{port}/healthz"),
                                      90, "GET /healthz answered 200")),
    "load-balancer": KindTraits("load-balancer", 3,
                                Probe(("sh", "-c", "nginx -t -q -c /lab/etc/nginx.conf && "
                                       "curl -sfk -o /dev/null https://127.0.0.1/.lab/ready"),
                                      60, "nginx -t passed and HTTPS on port 443 answered (by nginx itself)")),
    "client": KindTraits("client", 4, Probe(("sh", "-c", "test -e /run/lab/init-done && "
                                             "{ test ! -s /lab/ca.crt || test -e /run/lab/ca-trusted; }"),
                                            60, "routes, resolver and the lab CA installed")),
}


def traits(kind: str) -> KindTraits:
    return KIND_TRAITS[kind]
