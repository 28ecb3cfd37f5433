"""Reading a running node's routing: its table with each route's origin, its BGP sessions, the
AS path toward an address, the next hop the kernel uses. Parsing is separate from asking so
unit tests feed it real captured output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, ip_address

from lab.backends.protocol import Backend
from lab.errors import RuntimeFailure

# The kernel's words for where a route came from (ip route's "proto"), in a learner's words.
KERNEL_ORIGINS = {"kernel": "connected", "boot": "static", "static": "static", "bgp": "bgp",
                  "ospf": "ospf", "zebra": "frr"}


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


def parse_frr_routes(table: dict, bgp: dict) -> list[Route]:
    """`show ip route json` plus `show bgp ipv4 unicast json` (for AS paths)."""
    best_paths = {}
    for prefix, paths in bgp.get("routes", {}).items():
        for path in paths:
            if path.get("bestpath"):
                best_paths[prefix] = tuple(int(a) for a in path.get("path", "").split() if a.isdigit())
    routes = []
    for prefix, entries in table.items():
        for entry in entries:
            hop = next((h for h in entry.get("nexthops", []) if h.get("active")), {})
            protocol = entry.get("protocol", "?")
            routes.append(Route(prefix, protocol, hop.get("ip"), hop.get("interfaceName"),
                                bool(entry.get("selected") and entry.get("installed")),
                                entry.get("distance"), entry.get("metric"),
                                best_paths.get(prefix, ()) if protocol == "bgp" else ()))
    return routes


def parse_kernel_routes(routes: list[dict]) -> list[Route]:
    """`ip -j route show`: a node without FRR (static routes from the planner)."""
    return [Route(entry.get("dst", "?"), KERNEL_ORIGINS.get(entry.get("protocol", "boot"), entry.get("protocol", "?")),
                  entry.get("gateway"), entry.get("dev"), True) for entry in routes]


def parse_sessions(summary: dict) -> list[Session]:
    peers = summary.get("ipv4Unicast", {}).get("peers", {})
    return [Session(address, peer.get("desc", ""), peer.get("remoteAs", 0), peer.get("state", "?"),
                    peer.get("pfxRcd"), peer.get("peerUptime", "")) for address, peer in peers.items()]


def routing_table(backend: Backend, lab: str, node: str) -> RoutingTable:
    if runs_frr(backend, lab, node):
        table = vtysh_json(backend, lab, node, "show ip route json")
        bgp = vtysh_json(backend, lab, node, "show bgp ipv4 unicast json")
        return RoutingTable(node, "frr", parse_frr_routes(table, bgp), bgp.get("localAS"))
    # Both families in one exec: one JSON list a line (a node without IPv6 prints an empty one).
    text = _run(backend, lab, node, ["sh", "-c", "ip -j route show; echo; ip -j -6 route show 2>/dev/null || true"])
    routes = [entry for line in text.splitlines() if line.strip() for entry in json.loads(line)
              if not str(entry.get("dst", "")).startswith("fe80:")]   # link-local: every link has it
    return RoutingTable(node, "kernel", parse_kernel_routes(routes))


def sessions(backend: Backend, lab: str, node: str) -> list[Session]:
    return parse_sessions(vtysh_json(backend, lab, node, "show bgp summary json"))


def kernel_next_hop(backend: Backend, lab: str, node: str, address):
    """The gateway the node's kernel uses for address now, in the address's family (None: on a
    connected network, or no route)."""
    result = backend.exec(lab, node, ["ip", "-j", "route", "get", str(address)])
    if result.code != 0:
        return None
    entries = json.loads(result.stdout or "[]")
    gateway = entries[0].get("gateway") if entries else None
    return ip_address(gateway) if gateway else None


def as_path_toward(backend: Backend, lab: str, node: str, address: IPv4Address) -> tuple[int, tuple[int, ...]] | None:
    """(the node's own AS, the BGP best path's ASes toward address), or None without a BGP route."""
    answer = vtysh_json(backend, lab, node, f"show bgp ipv4 unicast {address} json")
    summary = vtysh_json(backend, lab, node, "show bgp summary json")
    own = summary.get("ipv4Unicast", {}).get("as")
    for path in answer.get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            segments = path.get("aspath", {}).get("segments", [])
            return own, tuple(a for segment in segments for a in segment.get("list", []))
    return None
