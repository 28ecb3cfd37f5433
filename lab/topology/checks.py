"""Pass two: what the file means (names that must exist, addresses, reachability).

Runs only on a structurally valid model, so every check can rely on types.
All problems are collected; nothing stops at the first one.
"""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Address, IPv6Address, ip_address

from lab.topology.as_checks import check_autonomous_systems
from lab.topology.check_refs import check_one
from lab.topology.errors import Problem
from lab.topology.ipv6 import check_ipv6
from lab.topology.model import (BALANCER_KIND, BUILTIN_RULE_NAMES, CLIENT_KIND, DATABASE_FIELD, DATABASE_KIND,
                                DATABASE_USER_KINDS, DNS_SERVER_KINDS, FIREWALL_KIND, FORWARDING_KINDS,
                                PUBLISH_RULE_PREFIX, RECORD_TYPES, RESOLVER_KIND, ROOT_KIND, UPSTREAM_KINDS,
                                ZONE_SERVER_KINDS, TopologySpec)
from lab.topology.names import (DOMAIN_NAME, NODE_NAME, RECORD_NAME, ROOT, absolute, ns_host,
                                replica_names, zone_of)
from lab.topology.reach import Reachability
from lab.topology.structure import suggest
from lab.topology.yaml_source import PathKey, Source
from lab.topology.zone_checks import check_zone_data

MIN_PREFIX = 8   # a Docker bridge with more than a /8 is no lab network (0.0.0.0/0 would be all of IPv4)
TARGET_FIELD = {"CNAME": 0, "NS": 0, "PTR": 0, "MX": 1, "SRV": 3}
FIELD_COUNT = {"CNAME": 1, "NS": 1, "PTR": 1, "MX": 2, "SRV": 4}
FIELD_FORMAT = {"MX": "'PREFERENCE HOST', like '10 mail'",
                "SRV": "'PRIORITY WEIGHT PORT HOST', like '0 5 443 www'"}


class Checker:
    """Collects meaning problems of one topology."""

    def __init__(self, spec: TopologySpec, source: Source):
        self.spec = spec
        self.source = source
        self.problems: list[Problem] = []
        self.reach = Reachability(spec)
        self.by_kind: dict[str, list[str]] = {}
        for name, node in spec.nodes.items():
            self.by_kind.setdefault(node.kind, []).append(name)

    def error(self, path: PathKey, message: str, at_key: bool = False) -> None:
        self.problems.append(self.source.problem(path, message, at_key))

    def run(self) -> list[Problem]:
        self.check_names()
        self.check_networks()
        self.check_attachments()
        self.check_resolvers()
        self.check_zones()
        self.check_routers()
        check_autonomous_systems(self)
        check_ipv6(self)
        self.check_firewall_rules()
        self.check_load_balancers()
        self.check_apps()
        self.check_impairments()
        self.check_expectations()
        return self.problems

    # -- helpers -------------------------------------------------------------
    def nodes_of(self, *kinds: str) -> list[str]:
        return [name for kind in kinds for name in self.by_kind.get(kind, ())]

    def node_ref(self, path: PathKey, name: str, kinds: tuple[str, ...], role: str) -> bool:
        """Check that name is a node of one of kinds; report and return False otherwise."""
        node = self.spec.nodes.get(name)
        if node is None:
            self.error(path, f"unknown node '{name}'{suggest(name, self.spec.nodes)}")
            return False
        if node.kind not in kinds:
            self.error(path, f"'{name}' is {_a(node.kind)} node; {role} must be {_a(' or '.join(kinds))} node")
            return False
        return True

    def must_reach(self, path: PathKey, source: str, target: str, why: str, at_key: bool = False) -> None:
        if not self.reach.node_reaches_node(source, target):
            self.error(path, f"'{source}' cannot reach '{target}' ({why}): no chain of routers "
                       f"joins their networks; attach them to a common network or add a router", at_key)

    # -- names and networks ----------------------------------------------------
    def check_names(self) -> None:
        for name, node in self.spec.nodes.items():
            if not NODE_NAME.match(name):
                self.error(("nodes", name), f"'{name}' is not a usable node name: use lower-case "
                           "letters, digits and '-', starting with a letter (it becomes a host name)",
                           at_key=True)
            replicas = replica_names(name, getattr(node, "replicas", 1))
            for instance in replicas:
                if instance != name and instance in self.spec.nodes:
                    self.error(("nodes", name), f"its replica '{instance}' would have the same name as "
                               f"node '{instance}': rename one of them", at_key=True)
            if name == "any":
                self.error(("nodes", name), "a node named 'any': in firewall rules 'any' means every "
                           "source, so 'from: any' would be ambiguous; rename the node", at_key=True)
            elif name in self.spec.networks:
                self.error(("nodes", name), f"a node named like network '{name}': firewall rules name "
                           f"nodes and networks alike, so 'from: {name}' would be ambiguous; rename "
                           "the node", at_key=True)
        for name in self.spec.networks:
            if name == "any":
                self.error(("networks", name), "a network named 'any': in firewall rules 'any' means "
                           "every source; rename the network", at_key=True)
            if not NODE_NAME.match(name):
                self.error(("networks", name), f"'{name}' is not a usable network name: use "
                           "lower-case letters, digits and '-'", at_key=True)

    def check_networks(self) -> None:
        items = list(self.spec.networks.items())
        for i, (name, network) in enumerate(items):
            path = ("networks", name, "subnet")
            subnet = network.subnet
            if subnet.prefixlen < MIN_PREFIX:
                self.error(path, f"{subnet} is too large for a lab network ({subnet.num_addresses:,} "
                           f"addresses): use a /{MIN_PREFIX} or smaller, like 100.64.0.0/16")
            if subnet.prefixlen > 29:
                self.error(path, f"{subnet} is too small: a lab network needs at least a /29 "
                           "(room for its nodes and the engine's gateway)")
            if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or subnet.is_unspecified:
                self.error(path, f"{subnet} cannot be a lab network: use addresses from "
                           "198.18.0.0/15 or 100.64.0.0/10")
            for other_name, other in items[:i]:
                if subnet.overlaps(other.subnet):
                    self.error(path, f"{subnet} overlaps network '{other_name}' ({other.subnet}); "
                               "give each network its own subnet")
        internet = self.spec.internet
        if internet is not None and internet not in self.spec.networks:
            self.error(("internet",), f"unknown network '{internet}'{suggest(internet, self.spec.networks)}")
        elif internet is not None and len(self.spec.networks) > 1 and not any(
                internet in node.networks for node in self.spec.nodes.values()
                if node.kind in FORWARDING_KINDS):
            self.error(("internet",), f"no router or firewall is on network '{internet}', so it joins "
                       "no other network and default routes toward it lead nowhere: attach a router "
                       "to it, or name another network")

    def check_attachments(self) -> None:
        owners: dict[IPv4Address, str] = {}
        for name, node in self.spec.nodes.items():
            if not node.networks:
                self.error(("nodes", name, "networks"), "a node needs at least one network")
            count = getattr(node, "replicas", 1)
            for net_name, address in node.networks.items():
                path = ("nodes", name, "networks", net_name)
                network = self.spec.networks.get(net_name)
                if network is None:
                    self.error(path, f"unknown network '{net_name}'{suggest(net_name, self.spec.networks)}",
                               at_key=isinstance(node.networks, dict))
                    continue
                if address is None:
                    continue
                for offset in range(count):
                    label = name if count == 1 else f"{name}-{offset + 1}"
                    if int(address) + offset > 0xFFFFFFFF:
                        self.error(path, f"{label} would get an address past 255.255.255.255 "
                                   f"({address} + {offset}): start the replicas lower, or leave "
                                   "the address out")
                        break
                    mine = address + offset
                    if mine not in network.subnet:
                        self.error(path, f"{mine} (for {label}) is outside network '{net_name}' "
                                   f"({network.subnet}): pick an address inside it or leave it out")
                    elif mine in (network.subnet.network_address, network.subnet.broadcast_address):
                        self.error(path, f"{mine} is the {'network' if mine == network.subnet.network_address else 'broadcast'} "
                                   f"address of {network.subnet}: pick a host address")
                    elif mine in owners and owners[mine] != label:
                        self.error(path, f"{mine} is already used by '{owners[mine]}': every node needs its own address")
                    else:
                        owners[mine] = label

    # -- DNS -------------------------------------------------------------------
    def check_resolvers(self) -> None:
        resolvers = self.nodes_of(RESOLVER_KIND)
        roots = self.nodes_of(ROOT_KIND)
        for name, node in self.spec.nodes.items():
            path = ("nodes", name, "resolver")
            if node.resolver is not None:
                if self.node_ref(path, node.resolver, (RESOLVER_KIND,), "a resolver"):
                    self.must_reach(path, name, node.resolver, "its resolver")
            elif node.kind == CLIENT_KIND and (self.spec.zones or self.nodes_of(*DNS_SERVER_KINDS)):
                # A lab without any DNS is fine (clients use addresses); one with
                # zones but no resolver for a client leaves it unable to use them.
                if not resolvers:
                    self.error(("nodes", name), "a client needs a resolver, and this lab has none: "
                               "add a node of kind dns-resolver", at_key=True)
                elif len(resolvers) > 1:
                    self.error(("nodes", name), f"this lab has several resolvers ({', '.join(resolvers)}): "
                               "say which one this client uses with 'resolver: NAME'", at_key=True)
                else:
                    self.must_reach(("nodes", name), name, resolvers[0], "its resolver", at_key=True)
            if node.kind == RESOLVER_KIND:
                self.check_root_hints(name, node, roots)

    def check_root_hints(self, name: str, node, roots: list[str]) -> None:
        if not roots and not node.roots:
            self.error(("nodes", name), "a resolver needs a root server to start from: add a "
                       "node of kind dns-root", at_key=True)
        for i, root in enumerate(node.roots):
            self.node_ref(("nodes", name, "roots", i), root, (ROOT_KIND,), "a root hint")
        for root in node.roots or roots:
            if root in self.spec.nodes:
                self.must_reach(("nodes", name), name, root, "a root server it starts from", at_key=True)

    def check_zones(self) -> None:
        zone_names = list(self.spec.zones)
        served: set[str] = set()
        if self.spec.zones and not self.nodes_of(ROOT_KIND):
            self.error(("zones",), "zones need a root to be delegated from: add a node of kind dns-root",
                       at_key=True)
        for zone_name, zone in self.spec.zones.items():
            path = ("zones", zone_name)
            if zone_name in (ROOT, "") or not DOMAIN_NAME.match(zone_name):
                message = ("the root zone is derived (every dns-root node serves it): remove this entry"
                           if zone_name in (ROOT, "") else
                           f"'{zone_name}' is not a zone name: write it like shop.test (lower case, no trailing dot)")
                self.error(path, message, at_key=True)
                continue
            if not zone.servers:
                self.error(path, "a zone with no authoritative server: add 'servers: [NODE]' naming "
                           "a dns-tld or dns-auth node", at_key=True)
            for i, server in enumerate(zone.servers):
                if self.node_ref((*path, "servers", i), server, DNS_SERVER_KINDS, "a zone's server"):
                    served.add(server)
                    for resolver in self.nodes_of(RESOLVER_KIND):
                        self.must_reach((*path, "servers", i), resolver, server,
                                        f"it must ask this server about {zone_name}")
            for record_name, by_type in zone.records.items():
                self.check_record_set(zone_name, zone_names, record_name, by_type)
        check_zone_data(self.spec, self.error)
        for name in self.nodes_of(*ZONE_SERVER_KINDS):
            if name not in served:
                self.error(("nodes", name), "this DNS server serves no zone: name it in a zone's "
                           "'servers' (under zones:) or remove it", at_key=True)

    def check_record_set(self, zone: str, zones: list[str], name: str, by_type: dict) -> None:
        path = ("zones", zone, "records", name)
        if not RECORD_NAME.match(name):
            self.error(path, f"'{name}' is not a record name: use '@' for the zone itself, or a "
                       "relative name like 'www'", at_key=True)
        if "CNAME" in by_type and len(by_type) > 1:
            self.error((*path, "CNAME"), "a name with a CNAME can have no other records: "
                       "move the other records to the CNAME's target", at_key=True)
        for rtype, values in by_type.items():
            if rtype not in RECORD_TYPES:
                self.error((*path, rtype), f"unknown record type '{rtype}'"
                           f"{suggest(rtype.upper(), RECORD_TYPES)} (types: {', '.join(RECORD_TYPES)})",
                           at_key=True)
                continue
            for value in values:
                self.check_record_value(zone, zones, (*path, rtype), rtype, value)
            if rtype == "CNAME" and len(values) > 1:
                self.error((*path, rtype), "a name has at most one CNAME")

    def check_record_value(self, zone: str, zones: list[str], path: PathKey, rtype: str, value: str) -> None:
        if rtype == "A":
            if not _is_ip(value, IPv4Address) and value not in self.spec.nodes:
                self.error(path, f"'{value}' is neither an IPv4 address nor a node"
                           f"{suggest(value, self.spec.nodes)}")
        elif rtype == "AAAA":
            node = self.spec.nodes.get(value)
            if node is not None and not any(self.spec.networks[n].subnet6 for n in node.networks
                                            if n in self.spec.networks):
                self.error(path, f"node '{value}' has no IPv6 address: give one of its networks a "
                           "subnet6, or use an A record")
            elif node is None and not _is_ip(value, IPv6Address):
                self.error(path, f"'{value}' is neither an IPv6 address nor a node"
                           f"{suggest(value, self.spec.nodes)}")
        elif rtype in TARGET_FIELD:
            fields = value.split()
            if len(fields) != FIELD_COUNT[rtype] or not all(f.isascii() and f.isdigit() for f in fields[:-1]):
                self.error(path, f"'{value}' is not a {rtype} value: write "
                           f"{FIELD_FORMAT.get(rtype, 'a host name')}")
                return
            self.check_target(zone, zones, path, fields[TARGET_FIELD[rtype]])

    def check_target(self, zone: str, zones: list[str], path: PathKey, target: str) -> None:
        """A name a record points at must be served by a zone of the lab, and exist there."""
        fqdn = absolute(target, zone)
        home = zone_of(fqdn, zones)
        if home is None:
            self.error(path, f"'{target}' points at {fqdn}, which no zone of this lab serves: "
                       "add that zone, or point at a name inside one")
            return
        relative = fqdn.rstrip(".").removesuffix(home).rstrip(".") or "@"
        known = set(self.spec.zones[home].records)
        known |= {ns_host(s, home).removesuffix(f".{home}.") for s in self.spec.zones[home].servers}
        if relative not in known and f"*.{relative.partition('.')[2]}".rstrip(".") not in known:
            self.error(path, f"'{target}' points at {fqdn}, but zone {home} has no such name"
                       f"{suggest(relative, known)}")

    def check_impairments(self) -> None:
        for name, node in self.spec.nodes.items():
            for network in node.impair:
                if network not in node.networks:
                    self.error(("nodes", name, "impair", network), f"'{network}' is not one of this node's "
                               f"networks ({', '.join(node.networks)}): it can only impair a link it has",
                               at_key=True)

    # -- routers, firewalls, web tier -----------------------------------------
    def check_routers(self) -> None:
        for name in self.nodes_of(*FORWARDING_KINDS):
            node = self.spec.nodes[name]
            for i, net in enumerate(node.masquerade):
                if net not in node.networks:
                    self.error(("nodes", name, "masquerade", i), f"'{net}' is not one of this router's "
                               f"networks ({', '.join(node.networks)}): it can only hide a network it is on")
            published: dict[tuple[int, str], int] = {}
            for i, forward in enumerate(node.forwards):
                key = (forward.port, forward.proto)
                if key in published:
                    self.error(("nodes", name, "forwards", i, "port"), f"port {forward.port}/{forward.proto} "
                               f"is already forwarded by forwards[{published[key]}]: a router port can "
                               "lead to one place only; use another port")
                published.setdefault(key, i)
                path = ("nodes", name, "forwards", i, "to")
                if self.node_ref(path, forward.to, tuple(self.kinds_present()), "a forward's target"):
                    self.must_reach(path, name, forward.to, "it forwards traffic there")

    @cached_property
    def instance_names(self) -> set[str]:
        return {i for name, node in self.spec.nodes.items()
                for i in replica_names(name, getattr(node, "replicas", 1))}

    def check_expectations(self) -> None:
        for i, check in enumerate(self.spec.checks):
            check_one(self, i, check)

    def kinds_present(self) -> set[str]:
        return {node.kind for node in self.spec.nodes.values()}

    def check_firewall_rules(self) -> None:
        for name in self.nodes_of(FIREWALL_KIND):
            seen: set[str] = set()
            for i, rule in enumerate(self.spec.nodes[name].rules):
                path = ("nodes", name, "rules", i)
                if rule.name in seen:
                    self.error((*path, "name"), f"another rule is already named '{rule.name}': rule names "
                               "must be unique (they label counters and logs)")
                seen.add(rule.name)
                if rule.name in BUILTIN_RULE_NAMES or rule.name.startswith(PUBLISH_RULE_PREFIX):
                    self.error((*path, "name"), f"'{rule.name}' is taken by a rule every firewall has on "
                               f"its own ({', '.join(BUILTIN_RULE_NAMES)}, {PUBLISH_RULE_PREFIX}*): "
                               "choose another name")
                for key, value in (("from", rule.from_), ("to", rule.to)):
                    if value == "any" and key == "from":
                        continue
                    if value not in self.spec.nodes and value not in self.spec.networks:
                        self.error((*path, key), f"'{value}' is neither a node nor a network"
                                   f"{suggest(value, [*self.spec.nodes, *self.spec.networks])}"
                                   + (" ('any' is allowed only in 'from')" if value == "any" else ""))
                if rule.proto == "icmp" and rule.ports:
                    self.error((*path, "ports"), "ICMP has no ports: remove 'ports' or use tcp/udp")

    def check_load_balancers(self) -> None:
        for name in self.nodes_of(BALANCER_KIND):
            node = self.spec.nodes[name]
            if not node.upstreams:
                self.error(("nodes", name), "a load balancer with no upstreams: add 'upstreams: [APP]' "
                           "naming the app nodes it spreads requests over", at_key=True)
            elif all(up.backup for up in node.upstreams):
                self.error(("nodes", name, "upstreams"), "every upstream is a backup: at least one "
                           "must be a primary (backup: false)")
            if node.algorithm == "ip-hash" and any(up.backup for up in node.upstreams):
                # nginx refuses `backup` with ip_hash: say so here, not in a failed nginx -t.
                self.error(("nodes", name, "algorithm"), "ip-hash cannot have backup upstreams (nginx "
                           "does not support it): use round-robin or least-connections, or drop backup")
            for i, upstream in enumerate(node.upstreams):
                path = ("nodes", name, "upstreams", i)
                if self.node_ref(path, upstream.node, UPSTREAM_KINDS, "an upstream"):
                    self.must_reach(path, name, upstream.node, "it forwards requests there")
            self.check_upstream_paths(name, node.upstreams)

    def check_upstream_paths(self, name: str, upstreams) -> None:
        """Upstreams sharing a path must share all their paths (one pool per set of paths)."""
        pools: dict[str, tuple[str, ...]] = {}
        for i, upstream in enumerate(upstreams):
            for route in upstream.paths:
                if "*" in route[:-1]:
                    self.error(("nodes", name, "upstreams", i, "paths"), f"'{route}': '*' may only "
                               "end a path (write '/static/*' for everything under /static/)")
                claimed = pools.setdefault(route, tuple(upstream.paths))
                if claimed != tuple(upstream.paths):
                    self.error(("nodes", name, "upstreams", i, "paths"), f"'{route}' is also in "
                               "another upstream's paths: upstreams serving a path share all their paths")

    def check_apps(self) -> None:
        for name in self.nodes_of(*DATABASE_USER_KINDS):
            database = self.spec.nodes[name].database
            path = ("nodes", name, DATABASE_FIELD)
            if database is not None and self.node_ref(path, database, (DATABASE_KIND,), "an app's database"):
                self.must_reach(path, name, database, "it stores its data there")


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _is_ip(value: str, family: type) -> bool:
    try:
        return isinstance(ip_address(value), family)
    except ValueError:
        return False


def check_meaning(spec: TopologySpec, source: Source) -> list[Problem]:
    """Every meaning problem of a structurally valid topology."""
    return Checker(spec, source).run()
