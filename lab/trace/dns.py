"""A DNS lookup as the resolver performed it, read from the packets it really sent.

`trace_lookup` runs dig in a client node while the client's resolver records
its DNS traffic (tcpdump in the resolver's container). Every upstream query and
its reply becomes a step: which server (node name and address) was asked, what
it said (answer, referral with NS and glue, NXDOMAIN, no data, no reply) and
how long it took. A lookup that made no upstream query was answered from cache.
"""

from __future__ import annotations

import uuid
from ipaddress import ip_address
from dataclasses import asdict, dataclass, field

from lab.backends.protocol import Backend
from lab.trace import resolver as dns_evidence
from lab.trace.stub import CACHE, StubAnswer


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
        return True
    except ValueError:
        return False


def with_stub(dns: DnsTrace, stub: StubAnswer | None) -> DnsTrace:
    """Add what the client's DNS cache said; an answer from it is the lookup's answer."""
    if stub is None:
        return dns
    dns.stub = stub.as_dict()
    if stub.from_cache and not dns.status:
        addresses = [a for a in stub.answer if _is_address(a)]
        dns.status = "NOERROR" if addresses else (stub.answer[0] if stub.answer else "")
        dns.answer = [f"{dns.name.rstrip('.')}. {'AAAA' if ':' in a else 'A'} {a}" for a in addresses]
    return dns


@dataclass
class DnsStep:
    server: str            # node name ("?" if the address is no node of the lab)
    address: str
    query: str             # the name and type the resolver asked (maybe minimised)
    outcome: str           # answer | referral | nxdomain | nodata | refused | servfail | no reply
    authoritative: bool
    duration_ms: float | None
    answer: list[str] = field(default_factory=list)
    ns: list[str] = field(default_factory=list)       # referral: the delegated zone's NS
    glue: list[str] = field(default_factory=list)     # referral: "host A address"
    zone: str = ""                                    # referral: the zone delegated
    after_ms: float | None = None   # sent this long after the client's query reached the resolver


@dataclass
class DnsTrace:
    name: str
    type: str
    client: str
    resolver: str
    resolver_address: str
    status: str
    answer: list[str]
    duration_ms: float | None        # as the client saw it (dig: whole milliseconds; a trace: curl's own lookup time)
    resolver_ms: float | None        # from the client's query reaching the resolver to its reply
    from_cache: bool
    steps: list[DnsStep]
    client_span_ms: float | None = None   # from the client's first query reaching the resolver to its last reply
    stub: dict | None = None              # the client's own DNS cache, by its log (lab.trace.stub.StubAnswer)

    @property
    def from_os_cache(self) -> bool:
        return bool(self.stub and self.stub["outcome"] == CACHE)

    def as_dict(self) -> dict:
        return asdict(self)


def _outcome(reply: dict) -> str:
    rcode = reply["rcode"]
    if rcode == "NXDOMAIN":
        return "nxdomain"
    if rcode != "NOERROR":
        return rcode.lower()
    if reply["answer"]:
        return "answer"
    if any(r["type"] == "NS" for r in reply["authority"]) and not reply["aa"]:
        return "referral"
    return "nodata"


def _step(query: dict, reply: dict | None, book: dict[str, str]) -> DnsStep:
    step = DnsStep(server=book.get(query["dst"], "?"), address=query["dst"],
                   query=f"{query['qname']} {query['qtype']}", outcome="no reply",
                   authoritative=False, duration_ms=None)
    if reply is None:
        return step
    step.outcome = _outcome(reply)
    step.authoritative = reply["aa"]
    step.duration_ms = round((reply["time"] - query["time"]) * 1000, 3)
    step.answer = [f"{r['name']} {r['type']} {r['data']}" for r in reply["answer"]]
    ns = [r for r in reply["authority"] if r["type"] == "NS"]
    if step.outcome == "referral":
        step.zone = ns[0]["name"]
        step.ns = [r["data"] for r in ns]
        step.glue = [f"{r['name']} {r['type']} {r['data']}" for r in reply["additional"]
                     if r["type"] in ("A", "AAAA")]
    return step


def _reply_to(query: dict, packets: list[dict]) -> dict | None:
    for packet in packets:
        if (packet["response"] and packet["src"] == query["dst"] and packet["dst"] == query["src"]
                and packet["sport"] == query["dport"] and packet["dport"] == query["sport"]
                and packet["id"] == query["id"]):
            return packet
    return None


def steps_from_packets(packets: list[dict], resolver_addresses: set[str], book: dict[str, str]) -> list[DnsStep]:
    """Upstream queries (from the resolver to port 53 elsewhere) paired with their replies."""
    return [_step(q, _reply_to(q, packets), book) for q in _upstream(packets, resolver_addresses)]


def resolver_time_ms(packets: list[dict], resolver_addresses: set[str], name: str) -> float | None:
    """How long the resolver took to answer the client's query, from its own packets."""
    wanted = name.rstrip(".").lower() + "."
    for query in packets:
        if (not query["response"] and query["dst"] in resolver_addresses and query["dport"] == 53
                and query["qname"].lower() == wanted):
            reply = _reply_to(query, packets)
            if reply is not None:
                return round((reply["time"] - query["time"]) * 1000, 3)
    return None


def client_query(packets: list[dict], resolver_addresses: set[str], name: str,
                 rtype: str = "A") -> tuple[dict | None, dict | None]:
    """The client's own query for name (to the resolver) and the resolver's reply to it."""
    wanted = name.rstrip(".").lower() + "."
    queries = [p for p in packets if not p["response"] and p["dst"] in resolver_addresses and p["dport"] == 53
               and p["qname"].lower() == wanted and p["qtype"] == rtype]
    for query in queries:
        reply = _reply_to(query, packets)
        if reply is not None:
            return query, reply
    return (queries[0] if queries else None), None


def lookup_from_packets(packets: list[dict], client: str, resolver: tuple[str, str], book: dict[str, str],
                        name: str, client_ms: float, rtype: str = "A") -> DnsTrace:
    """The lookup a client's stub resolver made (during a request), told from the resolver's packets:
    the client's query (of rtype: AAAA when the request went over IPv6) and the answer it got,
    and every upstream query the resolver made for it."""
    mine = {a for a, n in book.items() if n == resolver[0]}
    query, reply = client_query(packets, mine, name, rtype)
    if reply is None:
        # A client asking both families stops at the first failure: that answer is the one it got.
        other = "AAAA" if rtype == "A" else "A"
        other_query, other_reply = client_query(packets, mine, name, other)
        if other_reply is not None:
            query, reply, rtype = other_query, other_reply, other
    steps = steps_from_packets(packets, mine, book)
    if query is not None:
        # Only what the resolver asked for this name (or, minimised, a parent of it) after the
        # client's query reached it: not the lookups of a search domain the stub tried next.
        wanted = "." + name.rstrip(".").lower() + "."
        related = [(s, p) for s, p in zip(steps, _upstream(packets, mine))
                   if p["time"] >= query["time"] and wanted.endswith("." + p["qname"].lower().lstrip("."))]
        steps = [s for s, _ in related]
        for step, sent in related:
            step.after_ms = round((sent["time"] - query["time"]) * 1000, 3)
    answer = [f"{r['name']} {r['type']} {r['data']}" for r in reply["answer"]] if reply else []
    asked = [p for p in packets if p["dst"] in mine and p["dport"] == 53 and not p["response"]
             and p["src"] not in mine and p["qname"].lower().startswith(name.rstrip(".").lower() + ".")]
    answered = [p for p in packets if p["src"] in mine and p["response"] and p["sport"] == 53
                and any(q["src"] == p["dst"] and q["id"] == p["id"] for q in asked)]
    span = round((answered[-1]["time"] - asked[0]["time"]) * 1000, 3) if asked and answered else None
    return DnsTrace(name=name, type=rtype, client=client, resolver=resolver[0], resolver_address=resolver[1],
                    status=reply["rcode"] if reply else "", answer=answer, duration_ms=round(client_ms, 3),
                    resolver_ms=round((reply["time"] - query["time"]) * 1000, 3) if reply else None,
                    from_cache=reply is not None and not steps, steps=steps, client_span_ms=span)


def _upstream(packets: list[dict], resolver_addresses: set[str]) -> list[dict]:
    queries = [p for p in packets if not p["response"] and p["dport"] == 53
               and p["src"] in resolver_addresses and p["dst"] not in resolver_addresses]
    return sorted(queries, key=lambda p: p["time"])


def trace_lookup(backend: Backend, lab: str, node: str, name: str, rtype: str = "A") -> DnsTrace:
    """Look name up from node through its resolver, recording what the resolver did."""
    resolver, address = dns_evidence.resolver_of_node(backend, lab, node)
    book = backend.address_book(lab)
    mine = {a for a, n in book.items() if n == resolver}
    capture = uuid.uuid4().hex[:12]
    since = dns_evidence.stub_log_size(backend, lab, node)
    dns_evidence.start_capture(backend, lab, resolver, capture)
    try:
        seen = dns_evidence.dig(backend, lab, node, name, rtype)
    finally:
        packets = dns_evidence.stop_capture(backend, lab, resolver, capture)
    stub = dns_evidence.stub_answer(backend, lab, node, since, name, rtype) if since is not None else None
    steps = steps_from_packets(packets, mine, book)
    asked = client_query(packets, mine, name, rtype)[0] is not None
    return with_stub(DnsTrace(
        name=name, type=rtype, client=node, resolver=resolver, resolver_address=address,
        status=seen.status or seen.error or "no answer",
        answer=[f"{r.name} {r.type} {r.data}" for r in seen.answer],
        duration_ms=seen.query_ms, resolver_ms=resolver_time_ms(packets, mine, name),
        from_cache=not steps and bool(seen.status) and (asked or stub is None), steps=steps), stub)
