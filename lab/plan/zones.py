"""Zone data derived from the topology: what every zone holds, before any server syntax.

The root zone and the reverse zones (in-addr.arpa, one per /24 the lab uses, and
ip6.arpa, one per IPv6 /64) are derived; a record `A: NODE` of a dual-stack node
brings the node's AAAA records with it (as `AAAA: NODE` does alone), and glue and
hints have both families; the zones written in the topology get their SOA, their own NS
records with the NS hosts' addresses, and NS + glue for every child zone. The
root zone delegates each top zone the same way. Serials are not decided here:
zone files carry the SERIAL_TOKEN, replaced on the server (see services/dns/bin/lab-zones),
so an unchanged topology always renders the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from lab.kinds import registry
from lab.kinds.registry import ROOT_SERVER
from lab.topology import Instance, Lab
from lab.topology.names import ROOT, absolute, ns_host, parent_zone

SERIAL_TOKEN = "LAB_SERIAL"
DERIVED_TTL = 300          # root and reverse zones
NEGATIVE_TTL = 60          # how long an NXDOMAIN is cached (SOA minimum)
PTR_DOMAIN = "lab."        # PTR target of a node that has no name of its own in any zone


@dataclass(frozen=True)
class Record:
    owner: str   # absolute, with a trailing dot
    rtype: str
    data: str    # presentation format, names absolute
    ttl: int


@dataclass(frozen=True)
class ZoneData:
    name: str                 # "." for the root, "shop.test", "10.64.100.in-addr.arpa"
    servers: tuple[str, ...]  # instance names; the first is the primary
    ttl: int
    records: tuple[Record, ...]

    @property
    def primary(self) -> str:
        return self.servers[0]

    @property
    def secondaries(self) -> tuple[str, ...]:
        return self.servers[1:]

    @property
    def origin(self) -> str:
        return ROOT if self.name == ROOT else f"{self.name}."

    def of_type(self, rtype: str) -> list[Record]:
        return [r for r in self.records if r.rtype == rtype]


def server_address(lab: Lab, server: str) -> IPv4Address:
    """The address a DNS server is known by (glue, hints, primaries): its first network's."""
    return lab.instances_of(server)[0].first_address


def root_servers(lab: Lab) -> list[str]:
    return [name for name, node in lab.spec.nodes.items() if registry.is_a(node.kind, ROOT_SERVER)]


def server_address6(lab: Lab, server: str) -> IPv6Address | None:
    """A DNS server's IPv6 address (for AAAA glue and hints), None when it has none."""
    return lab.instances_of(server)[0].first_address6


REVERSE6_NIBBLES = 16   # a /64 is 16 nibbles: the zone's labels; the host part's 16 own the PTRs


def reverse_zone_name(address: IPv4Address | IPv6Address) -> str:
    if isinstance(address, IPv6Address):
        labels = address.reverse_pointer.split(".")   # 32 nibbles, low first, then ip6.arpa
        return ".".join(labels[REVERSE6_NIBBLES:])
    a, b, c, _ = str(address).split(".")
    return f"{c}.{b}.{a}.in-addr.arpa"


def _reverse_owner(address: IPv4Address | IPv6Address) -> str:
    return address.reverse_pointer + "."   # e.g. 10.10.64.100.in-addr.arpa.


def reverse_zone_names(lab: Lab) -> list[str]:
    """One reverse zone per /24 holding a node address, in address order, then one per
    IPv6 /64 holding one."""
    nets = {IPv4Network(f"{address}/24", strict=False)
            for instance in lab.instances for address in instance.addresses.values()}
    nets6 = {IPv6Network(f"{address}/64", strict=False)
             for instance in lab.instances for address in instance.addresses6.values()}
    return ([reverse_zone_name(net.network_address) for net in sorted(nets)] +
            [reverse_zone_name(net.network_address) for net in sorted(nets6)])


def _soa(zone: str, primary_host: str, ttl: int) -> Record:
    origin = ROOT if zone == ROOT else f"{zone}."
    mail = "hostmaster." + ("" if zone == ROOT else origin)
    data = f"{primary_host} {mail} {SERIAL_TOKEN} 300 5 86400 {NEGATIVE_TTL}"
    return Record(origin, "SOA", data, ttl)


def _ns_and_glue(lab: Lab, zone: str, servers: list[str], ttl: int) -> list[Record]:
    origin = ROOT if zone == ROOT else f"{zone}."
    records = [Record(origin, "NS", ns_host(s, zone), ttl) for s in servers]
    records += [Record(ns_host(s, zone), "A", str(server_address(lab, s)), ttl) for s in servers]
    records += [Record(ns_host(s, zone), "AAAA", str(server_address6(lab, s)), ttl) for s in servers
                if server_address6(lab, s) is not None]
    return records


def _txt(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    # A TXT string holds at most 255 bytes: longer texts become several strings.
    return " ".join(f'"{escaped[i:i + 255]}"' for i in range(0, max(len(escaped), 1), 255))


def _record_data(lab: Lab, zone: str, rtype: str, value: str) -> list[str]:
    if rtype == "A":
        if value in lab.spec.nodes:  # a node: every replica's address
            return [str(i.first_address) for i in lab.instances_of(value)]
        return [value]
    if rtype == "AAAA" and value in lab.spec.nodes:
        return [str(i.first_address6) for i in lab.instances_of(value) if i.first_address6]
    if rtype in ("CNAME", "NS", "PTR"):
        return [absolute(value, zone)]
    if rtype in ("MX", "SRV"):
        *numbers, target = value.split()
        return [" ".join([*numbers, absolute(target, zone)])]
    if rtype == "TXT":
        return [_txt(value)]
    return [value]  # AAAA


def _written_records(lab: Lab, zone: str) -> list[Record]:
    spec = lab.spec.zones[zone]
    records = []
    for name, by_type in spec.records.items():
        owner = absolute(name, zone)
        for rtype, values in by_type.items():
            for value in values:
                records += [Record(owner, rtype, data, spec.ttl) for data in _record_data(lab, zone, rtype, value)]
                if rtype == "A" and value in lab.spec.nodes:   # a dual-stack node answers AAAA too
                    records += [Record(owner, "AAAA", data, spec.ttl)
                                for data in _record_data(lab, zone, "AAAA", value)]
    return records


def _children(lab: Lab, zone: str) -> list[str]:
    names = list(lab.spec.zones)
    return [z for z in names if parent_zone(z, names) == zone]


def _delegations(lab: Lab, zone: str, ttl: int) -> list[Record]:
    records = []
    for child in _children(lab, zone):
        records += _ns_and_glue(lab, child, lab.spec.zones[child].servers, ttl)
    return records


def _user_zone(lab: Lab, zone: str) -> ZoneData:
    spec = lab.spec.zones[zone]
    records = [_soa(zone, ns_host(spec.servers[0], zone), spec.ttl), *_ns_and_glue(lab, zone, spec.servers, spec.ttl),
               *_written_records(lab, zone), *_delegations(lab, zone, spec.ttl)]
    return ZoneData(zone, tuple(spec.servers), spec.ttl, tuple(_unique(records)))


def _root_zone(lab: Lab) -> ZoneData:
    roots = root_servers(lab)
    records = [_soa(ROOT, ns_host(roots[0], ROOT), DERIVED_TTL), *_ns_and_glue(lab, ROOT, roots, DERIVED_TTL),
               *_delegations(lab, ROOT, DERIVED_TTL)]
    # The root servers also serve the reverse zones; the root delegates them
    # to itself so the hierarchy stays explicit (as in-addr.arpa once was).
    for reverse in reverse_zone_names(lab):
        records += [Record(f"{reverse}.", "NS", ns_host(r, ROOT), DERIVED_TTL) for r in roots]
    return ZoneData(ROOT, tuple(roots), DERIVED_TTL, tuple(_unique(records)))


def ptr_target(lab: Lab, instance: Instance) -> str:
    """The name an address maps back to: a DNS server's NS host name, else <instance>.lab."""
    for zone_name, zone in lab.spec.zones.items():
        if instance.node in zone.servers:
            return ns_host(instance.node, zone_name)
    if registry.is_a(instance.kind, ROOT_SERVER):
        return ns_host(instance.node, ROOT)
    return f"{instance.name}.{PTR_DOMAIN}"


def _reverse_zone(lab: Lab, zone: str) -> ZoneData:
    roots = root_servers(lab)
    # Served by the root servers under their root names (glue lives in the root zone).
    records = [_soa(zone, ns_host(roots[0], ROOT), DERIVED_TTL),
               *(Record(f"{zone}.", "NS", ns_host(r, ROOT), DERIVED_TTL) for r in roots)]
    pointers = sorted(((address, instance) for instance in lab.instances
                       for address in instance.all_addresses() if reverse_zone_name(address) == zone),
                      key=lambda pair: (pair[0].version, pair[0]))
    for address, instance in pointers:
        records.append(Record(_reverse_owner(address), "PTR", ptr_target(lab, instance), DERIVED_TTL))
    return ZoneData(zone, tuple(roots), DERIVED_TTL, tuple(records))


def _unique(records: list[Record]) -> list[Record]:
    return list(dict.fromkeys(records))


def all_zones(lab: Lab) -> dict[str, ZoneData]:
    """Every zone of the lab by name: the root, the topology's zones, the reverse zones."""
    if not root_servers(lab):
        return {}
    zones = {ROOT: _root_zone(lab)}
    zones.update({name: _user_zone(lab, name) for name in lab.spec.zones})
    zones.update({name: _reverse_zone(lab, name) for name in reverse_zone_names(lab)})
    return zones


def zones_of_server(lab: Lab, server: str) -> list[ZoneData]:
    return [zone for zone in all_zones(lab).values() if server in zone.servers]


def zone_file_text(zone: ZoneData) -> str:
    """The zone in master-file format, absolute names only, with the serial left as a token."""
    lines = [f"; zone {zone.name}: derived from the lab topology; {SERIAL_TOKEN} is set by the server",
             f"$TTL {zone.ttl}"]
    width = max(len(r.owner) for r in zone.records)
    lines += [f"{r.owner:<{width}} {r.ttl:>6} IN {r.rtype:<5} {r.data}" for r in zone.records]
    return "\n".join(lines) + "\n"
