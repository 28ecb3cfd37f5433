"""What the wire saw of one traced connection: tcpdump in the client and in every router and
firewall on the path, read back as packets (pure parsing and matching, plus the two commands).

A connection is recognised at every hop by its SYN's sequence number, which NAT leaves alone:
so a hop's own view (the addresses and ports before and after its masquerade, whether the SYN
left again or stopped there, how many packets of the connection crossed) is read from packets,
not computed from routes. In the client, the TLS handshake is split by the packets: the client's
setup before its ClientHello, the server's reply (ServerHello to Finished), and the client's own
work after it (loading its CA bundle, verifying) until it sends its Finished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "IP 100.64.10.10.59776 > ..." or "IP6 fd6c:6162:64:10::a.59776 > ...": the port is after the last dot.
PACKET = re.compile(r"^(\d+\.\d+) (\S+)\s+(In|Out|M|B|P)\s+IP6? ([0-9a-f.:]+)\.(\d+) > "
                    r"([0-9a-f.:]+)\.(\d+): Flags \[([^\]]*)\](?:, seq (\d+))?.*?length (\d+)")
DAY = 86400


@dataclass(frozen=True)
class Packet:
    time: float            # seconds of the day (UTC), the clock curl's --trace-time uses
    interface: str
    direction: str         # In | Out
    src: str
    sport: int
    dst: str
    dport: int
    flags: str             # tcpdump's: S, S., ., P., R, R., F. ...
    seq: int | None        # absolute on a SYN (relative after it)
    length: int

    @property
    def syn(self) -> bool:
        return self.flags == "S"


# The kernel's filter keeps only the packets a trace reads, so tcpdump wakes a few times per
# request, not once per packet: routers, the connection's control packets (SYN, SYN-ACK, RST,
# FIN); the client, also the packets that carry data (the TLS handshake's flights).
# libpcap reads tcp[] in IPv4 packets only: for IPv6 the flags byte is read at its place
# behind a 40-byte header (ip6[53]; the lab's TCP has no extension headers).
CONTROL = "tcp[tcpflags] & (tcp-syn|tcp-rst|tcp-fin) != 0 or (ip6 and ip6[53] & 0x07 != 0)"
WITH_DATA = "tcp[tcpflags] & (tcp-syn|tcp-rst|tcp-fin|tcp-push) != 0 or (ip6 and ip6[53] & 0x0f != 0)"


def marker(capture_id: str, word: str) -> str:
    """Printable bytes (ping's pattern holds 16 at most) that only this capture's marker carries."""
    return word + "".join(c for c in capture_id if c.isalnum())[-8:]


def _await_marker(base: str, text: str, tries: int = 100) -> str:
    """Shell: ping loopback with text as the pattern until the capture's file holds it."""
    return (f"for i in $(seq {tries}); do ping -c 1 -W 1 -p {text.encode().hex()} 127.0.0.1 >/dev/null 2>&1; "
            f"grep -aqF {text} {base}.pcap && break; sleep 0.02; done")


def start_command(capture_id: str, port: int, client: bool = False) -> list[str]:
    """Start tcpdump for the port in the background; return once it records (setsid: it outlives
    exec). It writes raw packet headers and decodes them after the request, off the request's path.
    tcpdump says "listening" a moment before packets reach its file (a request's first SYN was
    missed that way under load), so it counts as recording once a marker ping to loopback is in
    its file. None of its standard streams may stay on the exec's: the engine would then wait
    out its grace period for them to close (2 s) before the exec returns."""
    base = f"/tmp/lab-trace-{capture_id}"
    live = marker(capture_id, "lablive")
    wanted = f"(tcp port {int(port)} and ({WITH_DATA if client else CONTROL})) or (icmp and host 127.0.0.1)"
    return ["sh", "-c", f"command -v tcpdump >/dev/null || exit 3; "
                        f"setsid tcpdump -i any -nn -U --immediate-mode -s 128 -w {base}.pcap '{wanted}' "
                        f"> /dev/null 2> {base}.log < /dev/null & echo $! > {base}.pid; "
                        f"for i in $(seq 150); do grep -q listening {base}.log && break; sleep 0.02; done; "
                        f"{_await_marker(base, live)}; grep -aqF {live} {base}.pcap"]


def stop_command(capture_id: str) -> list[str]:
    """Stop the capture once a last marker is in its file: the packets before it are then
    written too (an interrupted tcpdump drops what it has not read yet)."""
    base = f"/tmp/lab-trace-{capture_id}"
    return ["sh", "-c", f"pid=$(cat {base}.pid) || exit 1; {_await_marker(base, marker(capture_id, 'lablast'), 50)}; "
                        f"kill -INT $pid 2>/dev/null; "
                        f"for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.02; done; "
                        f"tcpdump -nn -tt -r {base}.pcap 2>/dev/null; rm -f {base}.pcap {base}.log {base}.pid"]


def endpoint(address, port) -> str:
    """address:port, an IPv6 address in brackets ([fd00::a]:443) so the port stays apart."""
    return f"[{address}]:{port}" if address and ":" in str(address) else f"{address}:{port}"


def parse_packets(text: str) -> list[Packet]:
    packets = []
    for line in text.splitlines():
        match = PACKET.match(line)
        if match:
            at, interface, direction, src, sport, dst, dport, flags, seq, length = match.groups()
            packets.append(Packet(float(at) % DAY, interface, direction, src, int(sport), dst, int(dport), flags,
                                  int(seq) if seq else None, int(length)))
    return packets


def client_syn(packets: list[Packet], local_port: int, remote: str, port: int) -> Packet | None:
    """The client's own SYN of the traced connection (curl's local_port, remote address and port)."""
    return next((p for p in packets if p.syn and p.direction == "Out" and p.sport == local_port
                 and p.dst == remote and p.dport == port), None)


@dataclass
class HopView:
    """One router's or firewall's own view of the connection."""
    node: str
    syn_in: Packet | None          # the SYN arriving
    syn_out: Packet | None         # the SYN leaving again (None: it stopped here)
    answered: bool                 # the server's SYN-ACK came back through here
    refused: bool                  # a RST went back toward the client from here

    @property
    def seen(self) -> bool:
        return self.syn_in is not None

    def nat(self) -> str:
        """The translation seen on the wire, in words ('' when none)."""
        if not (self.syn_in and self.syn_out):
            return ""
        before, after = self.syn_in, self.syn_out
        changes = []
        if (before.src, before.sport) != (after.src, after.sport):
            changes.append(f"source {endpoint(before.src, before.sport)} became {endpoint(after.src, after.sport)}")
        if (before.dst, before.dport) != (after.dst, after.dport):
            changes.append(f"destination {endpoint(before.dst, before.dport)} became "
                           f"{endpoint(after.dst, after.dport)}")
        return "; ".join(changes)


def hop_view(node: str, packets: list[Packet], seq: int) -> HopView:
    syns = [p for p in packets if p.syn and p.seq == seq]
    syn_in = next((p for p in syns if p.direction == "In"), None)
    syn_out = next((p for p in syns if p.direction == "Out"), None)
    ends = {frozenset({(p.src, p.sport), (p.dst, p.dport)}) for p in syns}
    mine = [p for p in packets if frozenset({(p.src, p.sport), (p.dst, p.dport)}) in ends]
    back = [p for p in mine if syn_in is not None and p.direction == "Out"
            and (p.dst, p.dport) == (syn_in.src, syn_in.sport)]
    answered = any(p.flags == "S." for p in back)
    refused = any("R" in p.flags for p in back) and not answered
    return HopView(node, syn_in, syn_out, answered, refused)


@dataclass
class TlsOnTheWire:
    client_setup_ms: float     # from the handshake's last ACK to the ClientHello leaving
    server_ms: float           # from the ClientHello leaving to the server's flight arriving
    client_work_ms: float      # from the server's flight arriving to the client's Finished leaving
    hello_at: float            # seconds of the day
    flight_at: float
    finished_at: float


def tls_on_the_wire(packets: list[Packet], syn: Packet) -> TlsOnTheWire | None:
    """The handshake's three parts, from the client's own packets of the connection."""
    out = [p for p in packets if p.direction == "Out" and (p.src, p.sport, p.dst, p.dport) ==
           (syn.src, syn.sport, syn.dst, syn.dport) and p.time >= syn.time]
    back = [p for p in packets if p.direction == "In" and (p.dst, p.dport, p.src, p.sport) ==
            (syn.src, syn.sport, syn.dst, syn.dport) and p.time >= syn.time]
    hello = next((p for p in out if p.length > 0), None)
    if hello is None:
        return None
    flight = next((p for p in back if p.length > 0 and p.time >= hello.time), None)
    if flight is None:
        return None
    finished = next((p for p in out if p.length > 0 and p.time > flight.time), None)
    handshake_done = max((p.time for p in out if not p.syn and p.length == 0 and p.time <= hello.time),
                         default=syn.time)
    end = finished.time if finished else flight.time
    return TlsOnTheWire(round((hello.time - handshake_done) * 1000, 3), round((flight.time - hello.time) * 1000, 3),
                        round((end - flight.time) * 1000, 3), hello.time, flight.time, end)
