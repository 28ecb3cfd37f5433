"""Picking one request's packets out of what every hop recorded, and naming each step's packets
(pure: recorded frames in, frame numbers out)."""

from __future__ import annotations

from lab.backends.protocol import NodeCapture
from lab.capture import frames
from lab.trace.model import Step, Trace
from lab.trace.pcap import CLIENT, Picked, Request, Seen, flatten, number, pick, ranges

from .test_pcapng import dns_query, ipv4, pcap_stream, sll2, tcp, udp

LAPTOP, ROUTER_IN, ROUTER_OUT, LB, APP, DB, RESOLVER = ("100.64.10.10", "100.64.0.2", "100.64.0.2",
                                                        "198.18.10.10", "198.18.20.11", "198.18.30.10",
                                                        "100.64.0.53")
SEQ = 1000


def frame(at_us: int, src, sport, dst, dport, flags, seq=0, payload=b"", outgoing=True, ifindex=7) -> frames.Frame:
    raw = sll2(ifindex, outgoing, ipv4(src, dst, 6, tcp(sport, dport, seq, flags, payload)))
    return frames.decode(frames.LINKTYPE_LINUX_SLL2, at_us, raw, len(raw))


def seen(node: str, network: str, f: frames.Frame) -> Seen:
    return Seen(f"{node}:{network}", node, f)


S, SA, A, PA = frames.SYN, frames.SYN | frames.ACK, frames.ACK, frames.PSH | frames.ACK


def recorded() -> list[Seen]:
    query = sll2(7, True, ipv4(LAPTOP, RESOLVER, 17, udp(5000, 53, dns_query("www.shop.test"))))
    other = sll2(7, True, ipv4(LAPTOP, RESOLVER, 17, udp(5001, 53, dns_query("elsewhere.example"))))
    return [
        seen("laptop", "home", frames.decode(frames.LINKTYPE_LINUX_SLL2, 1, query, len(query))),
        seen("laptop", "home", frames.decode(frames.LINKTYPE_LINUX_SLL2, 2, other, len(other))),
        seen("laptop", "home", frame(10, LAPTOP, 40000, LB, 443, S, SEQ)),
        seen("router", "home", frame(11, LAPTOP, 40000, LB, 443, S, SEQ, outgoing=False)),
        seen("router", "isp", frame(12, ROUTER_OUT, 40000, LB, 443, S, SEQ)),          # masqueraded
        seen("lb", "dmz", frame(13, ROUTER_OUT, 40000, LB, 443, S, SEQ, outgoing=False)),
        seen("lb", "dmz", frame(14, LB, 443, ROUTER_OUT, 40000, SA, 5000)),
        seen("laptop", "home", frame(15, LB, 443, LAPTOP, 40000, SA, 5000, outgoing=False)),
        seen("laptop", "home", frame(16, LAPTOP, 40000, LB, 443, A)),
        seen("laptop", "home", frame(17, LAPTOP, 40000, LB, 443, PA, payload=b"hello")),      # ClientHello
        seen("laptop", "home", frame(18, LB, 443, LAPTOP, 40000, PA, payload=b"flight", outgoing=False)),
        seen("laptop", "home", frame(19, LAPTOP, 40000, LB, 443, PA, payload=b"fin")),        # Finished
        seen("laptop", "home", frame(20, LB, 443, LAPTOP, 40000, PA, payload=b"ticket", outgoing=False)),
        seen("laptop", "home", frame(21, LAPTOP, 40000, LB, 443, PA, payload=b"GET /")),      # the request
        seen("lb", "dmz", frame(22, LB, 50000, APP, 8000, PA, payload=b"GET /")),
        seen("app-1", "apps", frame(23, APP, 41000, DB, 5432, PA, payload=b"SELECT")),
        seen("db", "data", frame(24, DB, 5432, APP, 41000, PA, payload=b"rows", outgoing=True)),
        seen("lb", "dmz", frame(25, APP, 8000, LB, 50000, PA, payload=b"200", outgoing=False)),
        seen("laptop", "home", frame(26, LB, 443, LAPTOP, 40000, PA, payload=b"200 OK", outgoing=False)),
        seen("laptop", "home", frame(27, LAPTOP, 40001, LB, 443, S, 77)),                    # another connection
        seen("lb", "dmz", frame(500, LB, 50000, APP, 8000, PA, payload=b"later")),           # after it ended
    ]


REQUEST = Request("laptop", "www.shop.test", LB, 443, 40000,
                  {"laptop": {LAPTOP}, "lb": {LB}, "app-1": {APP}, "db": {DB}, "resolver": {RESOLVER}},
                  "lb", [(APP, 8000)], "app-1", "db")


def test_only_this_requests_packets_are_kept_in_time_order():
    picked = pick(recorded(), REQUEST)
    stamps = [s.frame.timestamp_us for s in picked.seen]
    assert stamps == sorted(stamps)
    assert 2 not in stamps          # another name's lookup
    assert 27 not in stamps         # another connection of the client
    assert 500 not in stamps        # the lb's connection after the request ended
    assert {1, 10, 12, 13, 22, 23, 24, 25, 26} <= set(stamps)
    assert picked.points == ["laptop:home", "router:home", "router:isp", "lb:dmz", "app-1:apps", "db:data"]


def test_the_nat_translated_syn_is_followed_by_its_sequence_number():
    picked = pick(recorded(), REQUEST)
    at_router = [s for s in picked.seen if s.point == "router:isp"]
    assert [(s.frame.src, s.role) for s in at_router] == [(ROUTER_OUT, CLIENT)]
    assert picked.syn_seq == SEQ


def test_each_step_gets_the_frames_that_are_its_evidence():
    picked = pick(recorded(), REQUEST)
    trace = Trace("https://www.shop.test/", "lab", "laptop", True, 1.0, 200, "")
    for kind, node in (("dns", "resolver"), ("path", "laptop"), ("tcp", "laptop"), ("tls", "laptop"),
                       ("request", "laptop"), ("lb", "lb"), ("app", "app-1"), ("db", "db"), ("transfer", "laptop")):
        trace.steps.append(Step(kind, kind, node, 0, 1))
    number(trace, picked, REQUEST, tls=True)
    stamp = {kind: [picked.seen[n - 1].frame.timestamp_us for n in trace.step(kind).packets]
             for kind in ("dns", "path", "tcp", "tls", "request", "lb", "app", "db", "transfer")}
    assert stamp["dns"] == [1]
    assert stamp["path"] == [11, 12]                        # the SYN at the routers, not at the client or lb
    assert stamp["tcp"] == [10, 15, 16]
    assert stamp["tls"] == [17, 18, 19, 20]                 # the session ticket before the request is TLS
    assert stamp["request"] == [21]
    assert stamp["transfer"] == [26]
    assert stamp["lb"] == [22, 25] and stamp["app"] == [] and stamp["db"] == [24]


def test_plain_http_has_no_tls_packets():
    events = [seen("laptop", "home", frame(10, LAPTOP, 40000, LB, 80, S, SEQ)),
              seen("laptop", "home", frame(11, LB, 80, LAPTOP, 40000, SA, 9, outgoing=False)),
              seen("laptop", "home", frame(12, LAPTOP, 40000, LB, 80, PA, payload=b"GET /")),
              seen("laptop", "home", frame(13, LB, 80, LAPTOP, 40000, PA, payload=b"200", outgoing=False))]
    request = Request("laptop", None, LB, 80, 40000, {"laptop": {LAPTOP}, "lb": {LB}})
    picked = pick(events, request)
    trace = Trace("http://x/", "lab", "laptop", True, 1.0, 200, "",
                  steps=[Step(k, k, "laptop", 0, 1) for k in ("tcp", "tls", "request", "transfer")])
    number(trace, picked, request, tls=False)
    assert [trace.step(k).packets for k in ("tcp", "tls", "request", "transfer")] == [[1, 2], [], [3], [4]]


def test_a_capture_is_split_by_the_interface_each_packet_was_seen_on():
    stream = pcap_stream(frames.LINKTYPE_LINUX_SLL2, [(5, sll2(3, True, b"")), (6, sll2(9, False, b""))])
    points = [s.point for s in flatten([NodeCapture("router", {3: "home", 9: "isp"}, stream)])]
    assert points == ["router:home", "router:isp"]


def test_frame_numbers_are_told_as_ranges():
    assert ranges([3, 1, 2, 7, 9, 10]) == "1-3, 7, 9-10"
    assert ranges([]) == "" and ranges([4]) == "4"


def test_nothing_is_kept_when_the_connection_never_left_the_client():
    picked = pick([seen("laptop", "home", frame(1, LAPTOP, 40000, "198.18.10.99", 443, S, SEQ))],
                  Request("laptop", None, LB, 443, 40000, {}))
    assert picked == Picked([], [], None)


def record(kind: int, body: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(body).to_bytes(2, "big") + body


def test_a_finished_that_carries_the_request_counts_for_both():
    """Linux may merge the client's Finished and its request in one segment (autocorking)."""
    both = record(20, b"\x01") + record(23, b"F" * 53) + record(23, b"GET / HTTP/1.1")
    events = [seen("laptop", "home", frame(10, LAPTOP, 40000, LB, 443, S, SEQ)),
              seen("laptop", "home", frame(11, LB, 443, LAPTOP, 40000, SA, 9, outgoing=False)),
              seen("laptop", "home", frame(12, LAPTOP, 40000, LB, 443, PA, payload=record(22, b"hello"))),
              seen("laptop", "home", frame(13, LB, 443, LAPTOP, 40000, PA, payload=record(22, b"sh"), outgoing=False)),
              seen("laptop", "home", frame(14, LAPTOP, 40000, LB, 443, PA, payload=both)),
              seen("laptop", "home", frame(15, LB, 443, LAPTOP, 40000, PA, payload=record(23, b"200"), outgoing=False))]
    assert frames.tls_records(events[4].frame) == [20, 23, 23]
    request = Request("laptop", None, LB, 443, 40000, {"laptop": {LAPTOP}, "lb": {LB}})
    trace = Trace("https://x/", "lab", "laptop", True, 1.0, 200, "",
                  steps=[Step(k, k, "laptop", 0, 1) for k in ("tcp", "tls", "request", "transfer")])
    number(trace, pick(events, request), request, tls=True)
    assert [trace.step(k).packets for k in ("tcp", "tls", "request", "transfer")] == [[1, 2], [3, 4, 5], [5], [6]]
