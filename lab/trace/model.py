"""A traced request, as data: the steps of the journey with who did them, when, and the evidence.

The JSON form (Trace.as_dict) is versioned by SCHEMA: a consumer checks
`schema == "lab.trace/2"`; fields are only ever added within a version.
Version 2 added each step's `source` (observed or derived) and the trace's
`outcome` (category, failing step, node, reason: lab.trace.outcome).

Times are milliseconds from the start of the trace (the moment the client's curl
started, its stub resolver's lookup first). `start_ms` + `duration_ms` of the
client-side steps (dns, tcp, tls, request, transfer) tile the client's measured
total, which is the header's total; every child lies inside its parent, and the
server-side steps (lb, app, db) nest inside the request step, each with its own
measured time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA = "lab.trace/2"
# How a step is known: read from the running system for this very request (packets,
# counters, log lines with our trace id, curl's own clock), or computed from configuration.
OBSERVED, DERIVED = "observed", "derived"
# Two steps of the lab.trace/2 vocabulary share a word with a node kind, but name what
# happened, not who did it: any filtering node makes a "firewall" step, and any server
# behind the load balancer (the shop's app, your own service) makes an "app" step.
FIREWALL_STEP = "firewall"
SERVER_STEP = "app"
SERVER_TIMING = "app"       # the Server-Timing metric a server reports its own time in
# The order a journey is told in; a failed trace stops at the step that failed.
STEP_KINDS = ("dns", "path", FIREWALL_STEP, "tcp", "tls", "request", "lb", SERVER_STEP, "db", "transfer")


@dataclass
class Step:
    kind: str                   # one of STEP_KINDS
    title: str                  # one line a newcomer understands: "TLS handshake with lb"
    node: str                   # the container that performed it ("laptop", "resolver", "fw", ...)
    start_ms: float
    duration_ms: float
    ok: bool = True
    detail: str = ""            # the outcome in words: "TLSv1.3, TLS_AES_256_GCM_SHA384"
    evidence: list[str] = field(default_factory=list)   # where it was read: log lines, counters, headers
    peer: str | None = None     # the other side of the step, for the sequence diagram
    children: list["Step"] = field(default_factory=list)  # e.g. each DNS server asked
    source: str = OBSERVED      # OBSERVED or DERIVED
    packets: list[int] = field(default_factory=list)    # with --pcap: its packets' frame numbers in the file


@dataclass
class Trace:
    url: str
    lab: str
    client: str
    ok: bool
    total_ms: float             # as the client measured it (DNS lookup + the request)
    status: int | None          # HTTP status; None when the request never got an answer
    summary: str                # one sentence: what happened, or where and why it stopped
    steps: list[Step] = field(default_factory=list)
    trace_id: str = ""          # the W3C trace id sent with the request (find it in the logs)
    outcome: dict = field(default_factory=dict)   # lab.trace.outcome.Outcome.as_dict()
    redirected_to: "Trace | None" = None          # -L: the request the redirect led to
    pcap: dict = field(default_factory=dict)      # --pcap: the file, its packets and capture points
    impairments: list = field(default_factory=list)   # the qdiscs on its path, as the kernel held them
    schema: str = SCHEMA

    def as_dict(self) -> dict:
        return asdict(self)

    def step(self, kind: str) -> Step | None:
        return next((s for s in self.steps if s.kind == kind), None)

    @property
    def nodes(self) -> list[str]:
        """Every container that took part, in order of first appearance."""
        seen: list[str] = []
        for step in self.steps:
            for name in (step.node, step.peer, *(c.node for c in step.children)):
                if name and name not in seen:
                    seen.append(name)
        return seen
