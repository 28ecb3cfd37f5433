"""Config files of DNS servers (BIND 9) and the resolver (Unbound).

Everything here is a live file: an edit is applied in place (BIND `rndc reload`,
`unbound-control reload`) without restarting the container. Zone data comes
from lab.plan.zones.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from lab.plan.model import LabState, Rendered
from lab.plan.zones import ZoneData, all_zones, root_servers, server_address, server_address6, zone_file_text
from lab.topology import Instance, Lab
from lab.topology.names import ROOT

ZONE_TEMPLATES = "etc/zones"               # under /lab: zone files with the serial token
ZONE_DIR = "/var/lib/lab-dns/zones"        # where lab-zones writes them with a real serial
SECONDARY_DIR = "/var/cache/bind/secondary"
ROOT_HINT_TTL = 3600000

NAMED_OPTIONS = """\
// Rendered by the lab planner. Authoritative only: no recursion, no DNSSEC.
options {
    directory "/var/cache/bind";
    listen-on { any; };
    listen-on-v6 { any; };
    recursion no;
    allow-query { any; };
    dnssec-validation no;
    notify explicit;
    // Secondaries that start before their primary retry quickly.
    min-retry-time 1;
    max-retry-time 5;
    min-refresh-time 5;
    querylog yes;
};
include "/etc/bind/rndc.key";
controls { inet 127.0.0.1 port 953 allow { 127.0.0.1; } keys { "rndc-key"; }; };
"""


def zone_file_name(zone: str) -> str:
    return "root.zone" if zone == ROOT else f"{zone}.zone"


def _addresses(lab: Lab, servers) -> str:
    return " ".join(f"{server_address(lab, s)};" for s in servers)


def _zone_statement(lab: Lab, zone: ZoneData, server: str) -> str:
    if server == zone.primary:
        if zone.secondaries:
            transfer = (f"    also-notify {{ {_addresses(lab, zone.secondaries)} }};\n"
                        f"    allow-transfer {{ {_addresses(lab, zone.secondaries)} }};\n")
        else:
            transfer = "    notify no;\n    allow-transfer { none; };\n"
        return (f'zone "{zone.name}" {{\n    type primary;\n'
                f'    file "{ZONE_DIR}/{zone_file_name(zone.name)}";\n{transfer}}};\n')
    return (f'zone "{zone.name}" {{\n    type secondary;\n'
            f"    primaries {{ {server_address(lab, zone.primary)}; }};\n"
            f'    file "{SECONDARY_DIR}/{zone_file_name(zone.name)}";\n'
            "    allow-transfer { none; };\n};\n")


def render_named_conf(lab: Lab, server: str, zones: list[ZoneData]) -> str:
    statements = [_zone_statement(lab, zone, server) for zone in zones]
    return NAMED_OPTIONS + "\n" + "\n".join(statements)


def render_dns_server(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    zones = [z for z in all_zones(lab).values() if instance.node in z.servers]
    live = {"etc/named.conf": render_named_conf(lab, instance.node, zones)}
    for zone in zones:
        if zone.primary == instance.node:
            live[f"{ZONE_TEMPLATES}/{zone_file_name(zone.name)}"] = zone_file_text(zone)
    return Rendered(live_files=live, reload=("/usr/local/bin/lab-named-reload",))


# -- the resolver ---------------------------------------------------------------

def resolver_of(lab: Lab, node: str) -> str | None:
    """The dns-resolver node a node asks (as lab.plan renders its resolv.conf)."""
    return lab.resolver_of(node)


def served_networks(lab: Lab, resolver: str) -> list[IPv4Network | IPv6Network]:
    """Subnets a resolver answers: those of the nodes that use it, and, for those hidden
    behind a masquerading router, the router's other networks (where their queries come from)."""
    names: set[str] = set()
    for node, spec in lab.spec.nodes.items():
        if resolver_of(lab, node) == resolver:
            names.update(spec.networks)
    for node, spec in lab.spec.nodes.items():
        if set(getattr(spec, "masquerade", ())) & names:
            names.update(spec.networks)
    served = [lab.spec.networks[n] for n in lab.spec.networks if n in names]
    return [net.subnet for net in served] + [net.subnet6 for net in served if net.subnet6]


def root_hints_of(lab: Lab, resolver: str) -> list[tuple[str, str]]:
    """(NS host, address) of every root server the resolver starts from: lab servers only."""
    roots = lab.spec.nodes[resolver].roots or root_servers(lab)
    return [(f"{root}.", str(server_address(lab, root))) for root in roots] + \
        [(f"{root}.", str(server_address6(lab, root))) for root in roots if server_address6(lab, root)]


def render_root_hints(lab: Lab, resolver: str) -> str:
    lines = ["; the lab's root servers: the only servers this resolver starts from"]
    hints = root_hints_of(lab, resolver)
    lines += [f".\t{ROOT_HINT_TTL}\tIN\tNS\t{host}" for host in dict.fromkeys(host for host, _ in hints)]
    lines += [f"{host}\t{ROOT_HINT_TTL}\tIN\t{'AAAA' if ':' in address else 'A'}\t{address}"
              for host, address in hints]
    return "\n".join(lines) + "\n"


def unserved_defaults(lab: Lab) -> list[str]:
    """Names Unbound answers locally by default (test., 64.100.in-addr.arpa., ... RFC 6761/6303)
    that the lab serves for real: every lab zone and its ancestors, so it iterates for them."""
    names: set[str] = set()
    for zone in all_zones(lab):
        labels = zone.split(".") if zone != ROOT else []
        names.update(".".join(labels[i:]) + "." for i in range(len(labels)))
    return sorted(names, key=lambda n: (n.count("."), n))


def render_unbound_conf(lab: Lab, resolver: str) -> str:
    access = "".join(f"    access-control: {net} allow\n" for net in served_networks(lab, resolver))
    # A dual-stack resolver answers on its IPv6 addresses too and may ask servers over IPv6.
    dual = bool(lab.instances_of(resolver)[0].addresses6)
    interfaces = "    interface: 0.0.0.0\n" + ("    interface: ::0\n" if dual else "")
    v6 = ("    do-ip6: yes\n    access-control: ::1 allow\n" if dual else "    do-ip6: no\n")
    local = "".join(f'    local-zone: "{name}" nodefault\n' for name in unserved_defaults(lab))
    return f"""\
# Rendered by the lab planner: a recursive resolver that knows only the lab's roots.
server:
{interfaces}    port: 53
{v6}    do-daemonize: no
    use-syslog: no
    logfile: ""
    chroot: ""
    username: "unbound"
    pidfile: ""
    directory: "/etc/unbound"
    root-hints: "/lab/etc/root.hints"
    # No validator: the lab has no DNSSEC, and no trust anchor may point outside it.
    module-config: "iterator"
    # Everyone is refused except the networks whose nodes use this resolver.
    access-control: 0.0.0.0/0 refuse
    access-control: 127.0.0.0/8 allow
{access}    # Served by the lab, not by Unbound's built-in local zones.
{local}    # Lab servers sit on benchmark/shared ranges; none of them is localhost.
    do-not-query-localhost: yes
    num-threads: 1
    verbosity: 1
    log-queries: yes
    log-replies: yes
    log-servfail: yes
    # Answers come in the order the zone has them (clearer for people reading dig).
    rrset-roundrobin: no
remote-control:
    control-enable: yes
    control-interface: 127.0.0.1
    control-use-cert: no
"""


def render_resolver(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    live = {"etc/unbound.conf": render_unbound_conf(lab, instance.node),
            "etc/root.hints": render_root_hints(lab, instance.node)}
    return Rendered(live_files=live, reload=("/usr/local/bin/lab-unbound-reload",))


__all__ = ["Rendered", "render_dns_server", "render_resolver", "render_named_conf", "render_unbound_conf", "render_root_hints",
           "served_networks", "resolver_of", "root_hints_of", "zone_file_name"]
