"""`lab trace --pcap FILE`: this request's own packets, at every hop it crossed, in one pcapng.

Every node the request may cross records while it runs (Backend.record: the
client, the routers and firewalls, the resolvers, the load balancers, their
upstreams and databases). Afterwards only this request's packets are kept, picked
with what the trace itself observed: its DNS lookup (the questions about its name),
its connection (curl's own port; at each hop the SYN with the same sequence
number, which NAT leaves alone, gives that hop's addresses), and the connections it
caused behind the load balancer (to the upstreams the lb's log names, and from the
app to its database) while it lasted. Each capture point (node:network) that saw
any of them becomes one interface of the file; each step names its packets by
their frame number in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab.backends.protocol import NodeCapture
from lab.capture import pcapng
from lab.errors import RuntimeFailure
from lab.capture.frames import LINKTYPE_LINUX_SLL2, TCP, Frame, read_pcap, tls_records
from lab.kinds import registry
from lab.kinds.registry import HTTP_BALANCER, HTTP_UPSTREAM, RECURSIVE_RESOLVER, SQL_DATABASE
from lab.topology import Lab
from lab.trace.model import FIREWALL_STEP, SERVER_STEP, Step, Trace
from lab.trace.outcome import Evidence

# What is recorded: DNS and TCP; the routers' own BGP sessions (tcp 179) are never a request's.
CAPTURE_FILTER = "udp port 53 or ( tcp and not port 179 )"
APPLICATION_DATA = 23       # a TLS record's content type: after the ServerHello, all of TLS 1.3 is this
# What a kept packet belongs to: the lookup, the client's connection, the lb's, the app's to its data.
DNS, CLIENT, UPSTREAM, DATABASE = "lookup", "connection", "upstream", "sql"


@dataclass
class Request:
    """What the trace observed of its request, to pick its packets by."""
    client: str
    host: str | None                     # the name looked up (None: the URL named an address)
    address: str | None                  # the address curl connected to
    port: int
    local_port: int | None               # curl's own port of the connection
    addresses: dict[str, set[str]]       # node -> its addresses
    lb: str | None = None
    upstreams: list[tuple[str, int]] = field(default_factory=list)   # (address, port) the lb tried
    app: str | None = None
    database: str | None = None


def recorded_nodes(lab: Lab, source: str) -> dict[str, str]:
    """node -> capture filter, for every node the request may cross: the client, the nodes that
    forward, and those that resolve names, balance HTTP, serve behind a balancer or hold data."""
    roles = (RECURSIVE_RESOLVER, HTTP_BALANCER, HTTP_UPSTREAM, SQL_DATABASE)
    nodes = [source] + [i.name for i in lab.instances if registry.get(i.kind).forwards
                        or any(registry.is_a(i.kind, role) for role in roles)]
    return {node: CAPTURE_FILTER for node in dict.fromkeys(nodes)}


def request_of(evidence: Evidence, lab: Lab) -> Request:
    upstreams = []
    for attempt in evidence.attempts:
        address, _, port = attempt.address.rpartition(":")
        if port.isdigit():
            upstreams.append((address, int(port)))
    local = evidence.curl.timings.get("local_port")
    return Request(evidence.client, None if evidence.dns is None else evidence.host, evidence.address,
                   evidence.port, int(local) if local else None,
                   {i.name: {str(a) for a in i.all_addresses()} for i in lab.instances},   # both families
                   evidence.lb, upstreams, evidence.app, evidence.database)


def attach(trace: Trace, path: Path, captures: list[NodeCapture], request: Request, tls: bool) -> None:
    """Keep the request's packets, write them to path, and name each step's packets."""
    picked = pick(flatten(captures), request)
    try:
        write(path, picked)
    except OSError as error:
        raise RuntimeFailure(f"cannot write {path}: {error.strerror or error}") from error
    number(trace, picked, request, tls)
    trace.pcap = {"file": str(path), "packets": len(picked.seen), "points": picked.points}


@dataclass(frozen=True)
class Seen:
    point: str          # "node:network"
    node: str
    frame: Frame
    role: str = ""      # DNS, CLIENT, UPSTREAM or DATABASE once picked


@dataclass
class Picked:
    points: list[str]                    # the file's interfaces, in order of first packet
    seen: list[Seen]                     # the file's packets: frame n is seen[n - 1]
    syn_seq: int | None = None

    def frames(self, keep) -> list[int]:
        return [n for n, one in enumerate(self.seen, 1) if keep(one)]


def flatten(captures: list[NodeCapture]) -> list[Seen]:
    seen = []
    for capture in captures:
        _, frames = read_pcap(capture.pcap)
        for frame in frames:
            network = capture.interfaces.get(frame.ifindex, f"if{frame.ifindex}")
            seen.append(Seen(f"{capture.node}:{network}", capture.node, frame))
    return seen


def _about(name: str, host: str) -> bool:
    """A question of this lookup: the name, a zone above it (the resolver's referrals and
    minimised questions, the root's priming) or the name with a search domain."""
    return name == host or name == "" or host.endswith("." + name) or name.startswith(host + ".")


def _client_syn(seen: list[Seen], request: Request) -> Frame | None:
    syns = [s.frame for s in seen if s.node == request.client and s.frame.syn and s.frame.outgoing
            and s.frame.dst == request.address and s.frame.dport == request.port]
    mine = [f for f in syns if f.sport == request.local_port]
    return (mine or syns or [None])[0]


def pick(seen: list[Seen], request: Request) -> Picked:
    """This request's packets among everything recorded, in time order."""
    host = (request.host or "").lower().rstrip(".")
    kept = [Seen(s.point, s.node, s.frame, DNS) for s in seen
            if host and s.frame.dns_name is not None and _about(s.frame.dns_name, host)]
    syn = _client_syn(seen, request) if request.address else None
    if syn is not None:
        ends = {s.frame.ends() for s in seen if s.frame.syn and s.frame.seq == syn.seq}
        mine = [s for s in seen if s.frame.protocol == TCP and s.frame.ends() in ends]
        kept += [Seen(s.point, s.node, s.frame, CLIENT) for s in mine]
        start = min([syn.timestamp_us] + [s.frame.timestamp_us for s in kept if s.node == request.client])
        end = max(s.frame.timestamp_us for s in mine)
        kept += _behind(seen, request, start, end)
    kept.sort(key=lambda s: s.frame.timestamp_us)
    points = list(dict.fromkeys(s.point for s in kept))
    return Picked(points, kept, syn.seq if syn is not None else None)


def _behind(seen: list[Seen], request: Request, start: int, end: int) -> list[Seen]:
    """The lb's connections to the upstreams it tried and the app's to its database, while the
    request lasted."""
    lb = request.addresses.get(request.lb or "", set())
    upstreams = set(request.upstreams)
    app = request.addresses.get(request.app or "", set())
    database = request.addresses.get(request.database or "", set())
    kept = []
    for s in seen:
        f = s.frame
        if f.protocol != TCP or not start <= f.timestamp_us <= end:
            continue
        if ({(f.src, f.sport), (f.dst, f.dport)} & upstreams) and {f.src, f.dst} & lb:
            kept.append(Seen(s.point, s.node, f, UPSTREAM))
        elif {f.src, f.dst} & app and {f.src, f.dst} & database:
            kept.append(Seen(s.point, s.node, f, DATABASE))
    return kept


def write(path: Path, picked: Picked) -> None:
    index = {point: n for n, point in enumerate(picked.points)}
    interfaces = [pcapng.Interface(point, LINKTYPE_LINUX_SLL2) for point in picked.points]
    packets = [pcapng.Packet(index[s.point], s.frame.timestamp_us, s.frame.data, s.frame.original_length)
               for s in picked.seen]
    with path.open("wb") as sink:
        pcapng.write(sink, interfaces, packets)


# --- each step's packets ---------------------------------------------------------------------

def _client_phases(picked: Picked, client: str, tls: bool) -> dict[str, list[int]]:
    """The client's own packets of its connection, split: handshake, TLS, request, response.
    TLS ends with the client's Finished (its first data after the server's flight); what the
    server sends before the request leaves (TLS 1.3 session tickets) is still TLS."""
    own = [(n, s.frame) for n, s in enumerate(picked.seen, 1) if s.role == CLIENT and s.node == client]
    phases: dict[str, list[int]] = {"tcp": [], "tls": [], "request": [], "transfer": []}
    phase, answered, finished = "tcp", False, False
    for n, f in own:
        if phase == "tcp" and f.payload:
            phase = "tls"
        if phase == "tls" and f.payload:
            if not f.outgoing:
                answered = True
            elif answered and not finished:
                finished = True
                if tls_records(f).count(APPLICATION_DATA) > 1:   # its Finished, and the request with it
                    phases["tls"].append(n)
                    phase = "request"
            elif finished:
                phase = "request"
        if phase == "request" and f.payload and not f.outgoing:
            phase = "transfer"
        phases[phase].append(n)
    if not tls:   # plain HTTP: what looked like a handshake was the request and its answer
        phases["request"], phases["transfer"] = _split_http(phases["tls"], own)
        phases["tls"] = []
    return phases


def _split_http(numbers: list[int], own: list[tuple[int, Frame]]) -> tuple[list[int], list[int]]:
    frames = dict(own)
    first_in = next((n for n in numbers if frames[n].payload and not frames[n].outgoing), None)
    if first_in is None:
        return numbers, []
    return [n for n in numbers if n < first_in], [n for n in numbers if n >= first_in]


def _syn_at(picked: Picked, seen: Seen) -> bool:
    """The client's SYN (by its sequence number), wherever it was seen."""
    return seen.role == CLIENT and seen.frame.syn and seen.frame.seq == picked.syn_seq


def step_packets(picked: Picked, step: Step, request: Request, phases: dict[str, list[int]]) -> list[int]:
    """The frames that are a step's evidence: the client's own packets for its steps, the SYN as
    each router or the firewall saw it, the lb's and the app's packets of the connection between
    them, the database's of the app's queries."""
    kind, node = step.kind, step.node
    if kind in phases:
        return phases[kind]
    if kind == "dns":
        return picked.frames(lambda s: s.role == DNS)
    if kind == "path":
        return picked.frames(lambda s: _syn_at(picked, s) and s.node not in (request.client, request.lb))
    if kind == FIREWALL_STEP:
        return picked.frames(lambda s: _syn_at(picked, s) and s.node == node)
    if kind in ("lb", SERVER_STEP):
        return picked.frames(lambda s: s.role == UPSTREAM and s.node == node)
    if kind == "db":
        return picked.frames(lambda s: s.role == DATABASE and s.node == node)
    return []


def resolver_asked(picked: Picked, child: Step, request: Request) -> list[int]:
    """A resolver's question to one server: its DNS packets to and from that server."""
    server = request.addresses.get(child.node, set())
    return picked.frames(lambda s: s.role == DNS and s.node == child.peer and
                         (s.frame.src in server or s.frame.dst in server))


def number(trace: Trace, picked: Picked, request: Request, tls: bool) -> None:
    """Give every step the frame numbers of its packets."""
    phases = _client_phases(picked, request.client, tls)

    def walk(step: Step, parent: Step | None) -> None:
        if parent is None or parent.kind != step.kind:
            step.packets = step_packets(picked, step, request, phases)
        elif step.kind == "dns":
            step.packets = resolver_asked(picked, step, request)
        # other children of their own kind (a TLS handshake's parts, the lb's attempts) share
        # their parent's packets: the parent names them once
        for child in step.children:
            walk(child, step)

    for top in trace.steps:
        walk(top, None)


def ranges(numbers: list[int]) -> str:
    """1, 2, 3, 7, 9, 10 -> "1-3, 7, 9-10"."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
