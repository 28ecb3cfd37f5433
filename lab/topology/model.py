"""The topology language as typed, immutable models (pydantic v2).

These classes are the single definition of the file format: the loader
validates files against them, `lab schema` prints their JSON Schema, and every
later layer reads them. They describe what a person wrote; derived facts
(allocated addresses, replica names) live in lab.topology.lab.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from lab.topology.impairments import IMPAIR_FIELDS, Impair  # noqa: F401 (part of the model)
from lab.topology.ipv6 import Address6, Subnet6
from lab.topology.parsing import parse_network
from lab.topology.parsing import shown as _shown
from lab.topology.strict import Strict
from lab.topology.yaml_compose import Yaml11

NAME_PATTERN = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
FORWARDING_KINDS = ("router", "firewall")
DNS_SERVER_KINDS = ("dns-root", "dns-tld", "dns-auth")
KINDS = ("client", "router", "firewall", *DNS_SERVER_KINDS, "dns-resolver",
         "load-balancer", "web", "app", "database", "service")
# Kinds by the part they play in the model's own checks (lab/topology/checks.py, flows.py,
# lab.py). Besides the classes below, these are the only names of kinds outside lab/kinds/,
# whose modules say everything else about a kind (image, probe, files, picture, roles).
CLIENT_KIND = "client"
RESOLVER_KIND = "dns-resolver"
ROOT_KIND = "dns-root"
ZONE_SERVER_KINDS = ("dns-tld", "dns-auth")   # serve the zones under zones: (the root's is derived)
FIREWALL_KIND = "firewall"
BALANCER_KIND = "load-balancer"
UPSTREAM_KINDS = ("web", "app", "service")    # what a load balancer's upstreams may name
DATABASE_KIND = "database"
DATABASE_USER_KINDS = ("app", "service")      # nodes with `database:` wiring
SERVICE_KIND = "service"
DATABASE_FIELD = "database"                   # that wiring's key (a field, not the kind)
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "PTR")


def _networks_as_mapping(value: Any) -> Any:
    # People write `networks: [home]` when any address will do, and a mapping
    # when they care: both mean "attach to these networks".
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("networks is a list of network names, or a mapping "
                             "of network name to address")
        return {name: None for name in value}
    return value


_NETWORKS_SCHEMA = {
    "oneOf": [
        {"type": "array", "items": {"type": "string"}, "description": "network names"},
        {"type": "object", "additionalProperties": {"type": ["string", "null"]},
         "description": "network name -> IPv4 address (null: allocate)"},
    ]
}
NodeNetworks = Annotated[
    dict[str, Union[IPv4Address, None]],
    BeforeValidator(_networks_as_mapping),
    WithJsonSchema(_NETWORKS_SCHEMA),
]


def yaml11_fix(value: Yaml11, wanted: str, example: str) -> str:
    """What to say about a plain value YAML 1.1 would have changed, in a field wanting `wanted`."""
    if value.reading.startswith("the octal"):
        return (f"'{value}' has a leading zero, so YAML 1.1 reads it as {value.reading}: "
                f"write {value.lstrip('0') or '0'} without the zero")
    if value.reading.startswith("the boolean"):
        return f"'{value}' is a yes/no word, not {wanted}: write {example}"
    return f"'{value}' is not {wanted} (YAML 1.1 would read it as {value.reading}): write {example}"


def _whole_number(value: Any) -> Any:
    # pydantic would take `true` as 1 and a YAML 1.1 `1:30` as 90: say so instead.
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number: write a whole number, like 2")
    if isinstance(value, Yaml11):
        raise ValueError(yaml11_fix(value, "a whole number", "one number, in digits"))
    if isinstance(value, str) and not (value.isascii() and value.strip().isdigit()):
        raise ValueError(f"{_shown(value)} is not a whole number: write it in digits (0-9), without quotes")
    return value


Whole = Annotated[int, BeforeValidator(_whole_number)]


def _expectation(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a YAML boolean, not an expectation: write "
                         f"allowed or blocked for a flow, a status code for http, or quote the text "
                         f"('{str(value).lower()}') for sql")
    return value


Expectation = Annotated[Union[str, list[str], int, None], BeforeValidator(_expectation)]


def _port_item(item: Any) -> tuple[int, int]:
    if isinstance(item, bool):
        raise ValueError(f"{str(item).lower()} is not a port: use a number like 443 or a range like '8000-8010'")
    if isinstance(item, Yaml11) and ":" not in item:
        raise ValueError(yaml11_fix(item, "a port", "a number like 443 or a range like '8000-8010'"))
    if isinstance(item, int):
        return item, item
    # '8000-8010', or iptables' '8000:8010' (a plain 22:23 arrives here as written,
    # not as YAML 1.1's base-60 number 1343: see yaml_compose).
    text = item.replace(":", "-", 1) if isinstance(item, str) else ""
    low_text, _, high_text = text.partition("-")
    if not all(part.isascii() and part.isdigit() for part in (low_text, high_text or low_text)):
        raise ValueError(f"{_shown(item)} is not a port: use a number like 443, a list, "
                         "or a range like '8000-8010'")
    return int(low_text), int(high_text or low_text)


def _parse_ports(value: Any) -> Any:
    # One port, a list of ports, or a "low-high" range, as firewall people write them.
    items = value if isinstance(value, list) else [value]
    ranges = []
    for item in items:
        low, high = _port_item(item)
        if not (1 <= low <= high <= 65535):
            raise ValueError(f"{_shown(item)} is not a valid port or range: ports go from 1 to "
                             "65535, the low end first")
        ranges.append((low, high))
    return tuple(ranges)


PortRanges = Annotated[
    tuple[tuple[int, int], ...],
    BeforeValidator(_parse_ports),
    WithJsonSchema({"oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 65535},
        {"type": "string", "pattern": r"^\d+(-\d+)?$"},
        {"type": "array", "items": {"type": ["integer", "string"]}},
    ]}),
]


def _record_values(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, (str, int)) and not isinstance(item, bool)
                            for item in items):
        raise ValueError("a record's value is a text (like '10 mail') or a list of texts")
    return tuple(str(item) for item in items)


RecordValues = Annotated[
    tuple[str, ...],
    BeforeValidator(_record_values),
    WithJsonSchema({"oneOf": [{"type": ["string", "integer"]},
                              {"type": "array", "items": {"type": ["string", "integer"]}}]}),
]


def _parse_subnet(value: Any) -> Any:
    return parse_network(value, IPv4Network, "an IPv4 subnet", "198.18.0.0/24")


Subnet = Annotated[IPv4Network, BeforeValidator(_parse_subnet),
                   WithJsonSchema({"type": "string", "format": "ipv4-network"})]


class Network(Strict):
    """A layer-2 segment: one Docker bridge network."""

    subnet: Subnet = Field(description="IPv4 subnet, e.g. 198.18.0.0/24")
    subnet6: Subnet6 | None = Field(default=None, description="IPv6 prefix beside it, a /64 "
                                    "(unique local or 2001:db8::/32), e.g. fd00:0:10::/64")
    as_: str | None = Field(default=None, alias="as", description="the autonomous system that "
                            "owns and announces it (none: a shared network, e.g. an IXP's)")
    description: str = ""
    impair: Impair | None = Field(default=None, description="what every node's link on this network "
                                  "does to what it sends (applied at lab up)")


class AutonomousSystem(Strict):
    """A network run by one organisation (an ISP, a site): its routers speak BGP to other
    ASes and OSPF among themselves. Relations decide what is announced to whom."""

    number: Annotated[int, Field(ge=1, le=4294967294), BeforeValidator(_whole_number)] = Field(
        description="AS number (64512-65534 and 4200000000-4294967294 are private)")
    providers: list[str] = Field(default_factory=list, description="ASes this one buys transit "
                                 "from: they carry its routes everywhere, it sends them only its own "
                                 "and its customers' routes")
    peers: list[str] = Field(default_factory=list, description="ASes it exchanges its own and "
                             "its customers' routes with, without transit")
    description: str = ""


class BgpNeighbor(Strict):
    """Per-neighbour tweaks of a router's BGP policy (the relation comes from the ASes)."""

    local_pref: Annotated[int, Field(ge=0, le=4294967295), BeforeValidator(_whole_number)] | None = Field(
        default=None, description="preference of routes learnt from it (higher wins; "
        "default by relation: customer 200, peer 150, provider 100)")
    prepend: Annotated[int, Field(ge=0, le=10), BeforeValidator(_whole_number)] = Field(
        default=0, description="times to repeat this AS in routes sent to it (makes them longer, "
        "less preferred)")


class NodeBase(Strict):
    networks: NodeNetworks = Field(description="networks this node is attached to")
    ip6: dict[str, Address6] = Field(default_factory=dict, description="network -> IPv6 address "
                                     "(default: the IPv4 address's host part in the network's subnet6)")
    resolver: str | None = Field(
        default=None, description="the dns-resolver node this node asks (default: the lab's only one)")
    description: str = ""
    impair: dict[str, Impair] = Field(default_factory=dict, description="network -> what this node's "
                                      "link there does to what it sends (over the network's own impair)")


class OsCache(Strict):
    """The client's own caching stub resolver (dnsmasq), as an operating system's DNS cache."""

    max_ttl: Whole = Field(default=3600, ge=0, le=604800, description="seconds it keeps an answer at "
                           "most (a record's own TTL, if shorter, wins; 0: the record's TTL)")
    size: Whole = Field(default=150, ge=0, le=10000, description="names it keeps (0: no cache)")


class Client(NodeBase):
    kind: Literal["client"]
    os_cache: OsCache | None = Field(default=None, description="a local caching stub resolver "
                                     "(dnsmasq) between its programs and its resolver")


class PortForward(Strict):
    """Publish a service on a router's own address (DNAT)."""

    port: Whole = Field(ge=1, le=65535, description="port on the router")
    to: str = Field(description="node that really serves it")
    to_port: Annotated[int, Field(ge=1, le=65535), BeforeValidator(_whole_number)] | None = Field(
        default=None, description="default: same port")
    proto: Literal["tcp", "udp"] = "tcp"


class Router(NodeBase):
    kind: Literal["router"]
    as_: str | None = Field(default=None, alias="as", description="its autonomous system: FRR "
                            "routes it (BGP, OSPF) instead of static routes")
    bgp: dict[str, BgpNeighbor] = Field(default_factory=dict, description="neighbour router "
                                        "-> policy tweaks (local_pref, prepend)")
    route_server: bool = Field(default=False, description="an exchange point's route server: "
                               "on one shared network (no `as:`), it peers with every router of "
                               "another AS there and passes their routes on unchanged (its AS not "
                               "in the path, the next hop the announcing member's); the members "
                               "peer with it instead of with each other")
    masquerade: list[str] = Field(
        default_factory=list, description="networks hidden behind this router's address (NAT)")
    forwards: list[PortForward] = Field(default_factory=list)


# Rules every firewall has on its own (lab/firewall/policy.py); user rules may not take
# these names, nor the "publish-" prefix of port forwards: names label counters.
BUILTIN_RULE_NAMES = ("established", "icmp-errors", "invalid", "default-deny", "input-loopback",
                      "input-established", "input-icmp", "input-traceroute", "input-default-deny")
PUBLISH_RULE_PREFIX = "publish-"


class FirewallRule(Strict):
    """One intent: let (or stop) traffic from somewhere to something."""

    name: Name
    from_: str = Field(alias="from", description="'any', a node or a network")
    to: str = Field(description="a node or a network")
    proto: Literal["tcp", "udp", "icmp"] = "tcp"
    ports: PortRanges | None = Field(default=None, description="one, a list or a range; none: all")
    action: Literal["allow", "deny", "reject"] = "allow"
    log: bool = False


class Firewall(Router):
    kind: Literal["firewall"]  # type: ignore[assignment]
    rules: list[FirewallRule] = Field(default_factory=list)


class DnsServer(NodeBase):
    kind: Literal["dns-root", "dns-tld", "dns-auth"]


class Resolver(NodeBase):
    kind: Literal["dns-resolver"]
    roots: list[str] = Field(default_factory=list,
                             description="root servers it knows (default: every dns-root node)")


UpstreamPath = Annotated[str, Field(pattern=r"^/[^\s{};]*$")]


class Upstream(Strict):
    node: str
    weight: Whole = Field(default=1, ge=1, le=100)
    backup: bool = False
    paths: list[UpstreamPath] = Field(
        default_factory=list, description="the paths it serves: '/' is that path only, '/static/*' "
        "everything under /static/; none: every path no other upstream claims")


def _upstream_entries(value: Any) -> Any:
    if isinstance(value, list):
        return [{"node": item} if isinstance(item, str) else item for item in value]
    return value


class LoadBalancer(NodeBase):
    kind: Literal["load-balancer"]
    upstreams: Annotated[list[Upstream], BeforeValidator(_upstream_entries)] = Field(
        default_factory=list, description="app nodes (replicas expand) or {node, weight, backup}")
    algorithm: Literal["round-robin", "least-connections", "ip-hash"] = "round-robin"
    max_fails: Whole = Field(default=1, ge=0, le=100)
    fail_timeout: Whole = Field(default=10, ge=1, le=3600, description="seconds")


class App(NodeBase):
    kind: Literal["app"]
    replicas: Whole = Field(default=1, ge=1, le=50)
    port: Whole = Field(default=8000, ge=1, le=65535)
    database: str | None = Field(default=None, description="the database node it uses")


class Web(NodeBase):
    """Static files (the shop's page, styles, script, image) served by nginx with cache headers."""

    kind: Literal["web"]
    replicas: Whole = Field(default=1, ge=1, le=50)
    port: Whole = Field(default=80, ge=1, le=65535)
    max_age: Whole = Field(default=3600, ge=0, le=31536000, description="seconds a browser may keep "
                           "the styles, script and image without asking again (the page itself: "
                           "always revalidated)")


class Readiness(Strict):
    """How the lab knows a service is ready: exactly one of http, tcp or command."""

    http: str | None = Field(default=None, description="a path that must answer 2xx/3xx, e.g. /healthz "
                             "(on the first of ports)")
    tcp: Annotated[int, Field(ge=1, le=65535), BeforeValidator(_whole_number)] | None = Field(
        default=None, description="a port that must accept connections")
    command: str | None = Field(default=None, description="a shell command run in the node that must exit 0")
    timeout: Whole = Field(default=60, ge=1, le=3600, description="seconds to wait at start")

    @model_validator(mode="after")
    def exactly_one(self) -> "Readiness":
        given = [key for key in ("http", "tcp", "command") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"a readiness probe says exactly one of http, tcp, command "
                             f"(this one has {', '.join(given) or 'none'})")
        if self.http is not None and not self.http.startswith("/"):
            raise ValueError(f"'{self.http}' is not a path: write it like /healthz")
        return self


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Service(NodeBase):
    """Your own program in the lab: a local image, or a Dockerfile folder the lab builds."""

    kind: Literal["service"]
    image: str | None = Field(default=None, description="a local image (the lab never pulls); "
                              "it must be built FROM lab/base:latest")
    build: str | None = Field(default=None, description="a folder with a Dockerfile, relative to "
                              "this topology file")
    command: list[str] | None = Field(default=None, description="what the container runs (default: "
                                      "the image's CMD)")
    env: dict[EnvName, str] = Field(default_factory=dict, description="environment variables")
    ports: list[Annotated[int, Field(ge=1, le=65535), BeforeValidator(_whole_number)]] = Field(
        default_factory=list, description="ports it listens on; the first is the one a load balancer uses")
    ready: Readiness | None = Field(default=None, description="readiness probe (default: tcp on the "
                                    "first port, else none)")
    replicas: Whole = Field(default=1, ge=1, le=50)
    database: str | None = Field(default=None, description="a database node: its URL is handed over "
                                 "in the file /lab/db/url ($LAB_DATABASE_URL_FILE)")

    @model_validator(mode="after")
    def image_or_build(self) -> "Service":
        if (self.image is None) == (self.build is None):
            raise ValueError("a service says exactly one of image (a local image) or build (a folder "
                             "with a Dockerfile)")
        return self


class Database(NodeBase):
    kind: Literal["database"]
    database: Name = Field(default="app", description="database name")


Node = Annotated[
    Union[Client, Router, Firewall, DnsServer, Resolver, LoadBalancer, Web, App, Database, Service],
    Field(discriminator="kind"),
]


class Zone(Strict):
    """A DNS zone: who serves it and what it holds. NS records and glue are derived."""

    servers: list[str] = Field(default_factory=list,
                               description="DNS server nodes; the first is the primary")
    ttl: Whole = Field(default=300, ge=0, le=604800)
    records: dict[str, dict[str, RecordValues]] = Field(
        default_factory=dict, description="name ('@' for the apex) -> type -> value(s)")


CHECK_KINDS = ("resolve", "http", "flow", "reach", "sql", "route")


class Check(Strict):
    """One expectation about the running lab, checked by `lab check` (exactly one of the
    resolve / http / flow / reach / sql keys says what to check)."""

    name: str = Field(description="what this check promises, in words")
    from_: str | None = Field(default=None, alias="from",
                              description="node the check runs from (default: the first client)")
    resolve: str | None = Field(default=None, description="a DNS name to look up")
    type: str = Field(default="A", description="record type for resolve")
    http: str | None = Field(default=None, description="a URL to fetch")
    flow: str | None = Field(default=None, description="'NODE:PORT' to connect to")
    proto: Literal["tcp", "udp"] = "tcp"
    reach: str | None = Field(default=None, description="a node that must answer ping")
    sql: str | None = Field(default=None, description="a query run on a database node ('on')")
    route: str | None = Field(default=None, description="a network (or prefix) whose BGP route a "
                              "router ('from', in an AS) must have; expect: its AS path")
    on: str | None = Field(default=None, description="the database node for sql")
    expect: Expectation = Field(
        default=None, description="resolve: values (node names or addresses); flow: allowed|blocked; "
        "http: status code; sql: the first row's first value; route: the AS path, nearest first "
        "(AS names or numbers, a list or one text)")
    contains: str | None = Field(default=None, description="http/sql: text the answer must contain")
    family: Literal[4, 6] | None = Field(default=None, description="http/flow/reach over IPv4 or IPv6 "
                                         "only (default: IPv4 for flow and reach, curl's choice for http); "
                                         "route: the network's IPv6 prefix and BGP's IPv6 table")

    @model_validator(mode="after")
    def one_subject(self) -> "Check":
        given = [key for key in CHECK_KINDS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"a check says exactly one of {', '.join(CHECK_KINDS)} "
                             f"(this one has {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(key for key in CHECK_KINDS if getattr(self, key) is not None)


class TopologySpec(Strict):
    """A whole lab as written in its YAML file."""

    name: Name = Field(description="lab name; prefixes every Docker object")
    description: str = ""
    internet: str | None = Field(
        default=None, description="the backbone network; default routes point toward it")
    autonomous_systems: dict[Name, AutonomousSystem] = Field(
        default_factory=dict, description="ASes; networks and routers name theirs with 'as'")
    networks: dict[str, Network]
    nodes: dict[str, Node]
    zones: dict[str, Zone] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list, description="expectations for `lab check`")
