"""Reading a running node's routing: its table with each route's origin, its BGP sessions, the
AS path toward an address, the next hop the kernel uses. Parsing is separate from asking so
unit tests feed it real captured output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from lab.backends.protocol import Backend
from lab.errors import RuntimeFailure

# The kernel's words for where a route came from (ip route's "proto"), in a learner's words.
KERNEL_ORIGINS = {"kernel": "connected", "boot": "static", "static": "static", "bgp": "bgp",
                  "ospf": "ospf", "zebra": "frr"}
# FRR's protocol names, in a learner's words: OSPF for IPv6 is OSPFv3 (FRR's ospf6d).
FRR_ORIGINS = {"ospf6": "ospfv3"}
# FRR's JSON names an address family's table like this (show bgp summary json).
FAMILY_KEYS = {4: "ipv4Unicast", 6: "ipv6Unicast"}


@dataclass(frozen=True)
class Route:
    prefix: str
    origin: str                       # connected, static, ospf, bgp
    via: str | None                   # next hop address (None: directly connected)
    interface: str | None
    selected: bool                    # the one in use (FIB); others are alternatives
    distance: int | None = None
    metric: int | None = None
    as_path: tuple[int, ...] = ()     # BGP only: the ASes toward the prefix, nearest first
    family: int = 4                   # 4 or 6

    def as_dict(self) -> dict:
        return {**asdict(self), "as_path": list(self.as_path)}


@dataclass(frozen=True)
class Session:
    neighbor: str                     # address
    name: str                         # the description lab rendered: "NODE (relation)"
    remote_as: int
    state: str                        # Established, Active, Connect, Idle ...
    prefixes_received: int | None
    uptime: str
    family: int = 4                   # the address family the session carries (4 or 6)

    @property
    def established(self) -> bool:
        return self.state == "Established"


@dataclass
class RoutingTable:
    node: str
    source: str                       # "frr" or "kernel": who the table was read from
    routes: list[Route] = field(default_factory=list)
    local_as: int | None = None

    def as_dict(self) -> dict:
        return {"node": self.node, "read_from": self.source, "local_as": self.local_as,
                "routes": [route.as_dict() for route in self.routes]}


def _run(backend: Backend, lab: str, node: str, command: list[str]) -> str:
    result = backend.exec(lab, node, command)
    if result.code != 0:
        raise RuntimeFailure(f"{node}: `{' '.join(command)}` failed: {result.output.strip() or f'exit {result.code}'}")
    return result.stdout


def runs_frr(backend: Backend, lab: str, node: str) -> bool:
    return backend.exec(lab, node, ["test", "-S", "/var/run/frr/bgpd.vty"]).code == 0


def vtysh_json(backend: Backend, lab: str, node: str, command: str) -> dict:
    text = _run(backend, lab, node, ["vtysh", "-c", command])
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        raise RuntimeFailure(f"{node}: FRR's answer to '{command}' is not JSON: {text[:200]}") from None


def parse_frr_routes(table: dict, bgp: dict, family: int = 4) -> list[Route]:
    """`show ip route json` plus `show bgp ipv4 unicast json` (for AS paths); for family 6,
    `show ipv6 route json` plus `show bgp ipv6 unicast json`."""
    best_paths = {}
    for prefix, paths in bgp.get("routes", {}).items():
        for path in paths:
            if path.get("bestpath"):
                best_paths[prefix] = tuple(int(a) for a in path.get("path", "").split() if a.isdigit())
    routes = []
    for prefix, entries in table.items():
        if prefix.startswith("fe80:"):   # link-local: every link has it, no lab prefix
            continue
        for entry in entries:
            hop = next((h for h in entry.get("nexthops", []) if h.get("active")), {})
            protocol = entry.get("protocol", "?")
            routes.append(Route(prefix, FRR_ORIGINS.get(protocol, protocol), hop.get("ip"),
                                hop.get("interfaceName"), bool(entry.get("selected") and entry.get("installed")),
                                entry.get("distance"), entry.get("metric"),
                                best_paths.get(prefix, ()) if protocol == "bgp" else (), family))
    return routes


def parse_kernel_routes(routes: list[dict], family: int = 4) -> list[Route]:
    """`ip -j route show` (family 6: `ip -j -6 route show`): a node without FRR (static routes
    from the planner). Link-local routes (fe80::/64 on every link) are left out."""
    return [Route(entry.get("dst", "?"), KERNEL_ORIGINS.get(entry.get("protocol", "boot"), entry.get("protocol", "?")),
                  entry.get("gateway"), entry.get("dev"), True, family=family) for entry in routes
            if not str(entry.get("dst", "")).startswith("fe80:")]


def parse_sessions(summary: dict) -> list[Session]:
    """Both families' sessions from `show bgp summary json`, IPv4 first."""
    found = []
    for family, key in FAMILY_KEYS.items():
        peers = summary.get(key, {}).get("peers", {})
        found += [Session(address, peer.get("desc", ""), peer.get("remoteAs", 0), peer.get("state", "?"),
                          peer.get("pfxRcd"), peer.get("peerUptime", ""), family) for address, peer in peers.items()]
    return found


def routing_table(backend: Backend, lab: str, node: str) -> RoutingTable:
    """Both families' routes, IPv4 first."""
    if runs_frr(backend, lab, node):
        routes, local_as = [], None
        for family, show in ((4, "ip"), (6, "ipv6")):
            table = vtysh_json(backend, lab, node, f"show {show} route json")
            bgp = vtysh_json(backend, lab, node, f"show bgp ipv{family} unicast json")
            routes += parse_frr_routes(table, bgp, family)
            local_as = local_as or bgp.get("localAS")
        return RoutingTable(node, "frr", routes, local_as)
    # Both families in one exec: one JSON list a line (a node without IPv6 prints an empty one).
    text = _run(backend, lab, node, ["sh", "-c", "ip -j route show; echo; ip -j -6 route show 2>/dev/null || echo '[]'"])
    lists = [json.loads(line) for line in text.splitlines() if line.strip()]
    routes = [route for family, entries in zip((4, 6), lists) for route in parse_kernel_routes(entries, family)]
    return RoutingTable(node, "kernel", routes)


def sessions(backend: Backend, lab: str, node: str) -> list[Session]:
    return parse_sessions(vtysh_json(backend, lab, node, "show bgp summary json"))


Address = IPv4Address | IPv6Address


def kernel_next_hop(backend: Backend, lab: str, node: str, address: Address) -> Address | None:
    """The gateway the node's kernel uses for address now, in the address's family (None: on a
    connected network, or no route)."""
    result = backend.exec(lab, node, ["ip", "-j", f"-{address.version}", "route", "get", str(address)])
    if result.code != 0:
        return None
    entries = json.loads(result.stdout or "[]")
    gateway = entries[0].get("gateway") if entries else None
    return ip_address(gateway) if gateway else None


def as_path_toward(backend: Backend, lab: str, node: str, address: Address) -> tuple[int, tuple[int, ...]] | None:
    """(the node's own AS, the BGP best path's ASes toward address), or None without a BGP route;
    asked of the BGP table of the address's family."""
    answer = vtysh_json(backend, lab, node, f"show bgp ipv{address.version} unicast {address} json")
    summary = vtysh_json(backend, lab, node, "show bgp summary json")
    own = next((summary[key]["as"] for key in FAMILY_KEYS.values() if summary.get(key, {}).get("as")), None)
    for path in answer.get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            segments = path.get("aspath", {}).get("segments", [])
            return own, tuple(a for segment in segments for a in segment.get("list", []))
    return None
