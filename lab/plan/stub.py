"""A client's operating-system DNS cache: dnsmasq as a caching stub in front of its resolver.

Programs in the node ask 127.0.0.1 (its resolv.conf); dnsmasq answers from its cache or
forwards to the topology's resolver, and logs every query with a serial number and what it
did with it (`log-queries=extra`), so a trace can tell "from the OS cache" from "forwarded"
by the stub's own record, beside the resolver's packets.
"""

from __future__ import annotations

from lab.plan.model import LabState, Rendered
from lab.topology import Instance, Lab

CONF = "etc/dnsmasq.conf"
CONF_PATH = f"/lab/{CONF}"
LOG_PATH = "/run/lab/dnsmasq.log"
STUB_ADDRESS = "127.0.0.1"


def render_stub_conf(lab: Lab, instance: Instance, resolver_address: str) -> str:
    cache = lab.spec.nodes[instance.node].os_cache
    return (
        f"# Rendered by lab for node {instance.name} of lab {lab.name}: edit the topology, not this file.\n"
        "# The node's DNS cache: only for its own programs, never for the network.\n"
        f"listen-address={STUB_ADDRESS}\nbind-interfaces\nport=53\nuser=root\n"
        "no-resolv\nno-hosts\nno-poll\nno-negcache\n"
        f"server={resolver_address}\n"
        f"cache-size={cache.size}\n"
        + (f"max-cache-ttl={cache.max_ttl}\n" if cache.max_ttl else "")
        + f"log-queries=extra\nlog-facility={LOG_PATH}\n"
    )


def render_stub_resolv_conf(lab: Lab) -> str:
    zones = list(lab.spec.zones)
    search = f"search {zones[-1]}\n" if zones else ""
    return (f"# the node's own caching stub (dnsmasq, /lab/{CONF}); it forwards to the lab's resolver\n"
            f"nameserver {STUB_ADDRESS}\n{search}options timeout:2 attempts:2\n")


def render_client(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    spec = lab.spec.nodes[instance.node]
    resolver = lab.resolver_of(instance.node)
    if spec.os_cache is None or resolver is None:
        return Rendered()
    address = str(lab.instances_of(resolver)[0].first_address)
    return Rendered(files={CONF: render_stub_conf(lab, instance, address),
                           "resolv.conf": render_stub_resolv_conf(lab)})
