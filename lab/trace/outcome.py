"""Where a traced request ended, and why: the failure taxonomy of `lab trace`, in one place.

`classify` is a pure function from the evidence gathered for one request (the
resolver's packets, curl's exit code, error and timings, the firewalls' counters,
the lb's and the app's own log lines for our trace id) to one Outcome: the step
where the journey ended, the node that decided it, a category and a reason in
words. Nothing here is guessed from a status code alone: a 503 is blamed on the
database only when the app's own log line for this trace records a database
error, and a 502/504 is the lb's own answer only when no app logged the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.trace.dns import DnsTrace
from lab.trace.web import Attempt, CurlResult
from lab.trace.model import FIREWALL_STEP, SERVER_STEP

# curl exit codes (man curl, "EXIT CODES")
RESOLVE_FAILED, CONNECT_FAILED, TIMED_OUT, EMPTY_REPLY, RECV_ERROR = 6, 7, 28, 52, 56
TLS_EXITS = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91}


@dataclass
class FirewallDecision:
    """What one firewall did with the request's connection, read from its rule counters."""
    firewall: str
    rule: str
    action: str                   # allow | deny | reject
    rose: int                     # packets the rule counted during the request
    confirmed: bool | None = None


@dataclass
class Evidence:
    client: str                   # the node the request ran from
    host: str
    port: int
    https: bool
    curl: CurlResult
    dns: DnsTrace | None = None   # None when the URL named an address
    address: str | None = None    # the address connected to (or that the name resolved to)
    target: str | None = None     # the node that owns the address (None: no node of the lab has it)
    firewalls: list[FirewallDecision] = field(default_factory=list)
    lb: str | None = None         # the target, when it is a load balancer
    lb_line: dict | None = None   # the lb's access log line for our trace id
    attempts: list[Attempt] = field(default_factory=list)
    app: str | None = None        # the app that logged our trace id (X-Served-By or its own log)
    app_line: dict | None = None
    database: str | None = None   # the app's database in the topology
    names: dict[str, str] = field(default_factory=dict)   # address -> node
    certificate_names: list[str] = field(default_factory=list)   # read by a second probe after a TLS failure
    hops: list = field(default_factory=list)      # lab.trace.wire.HopView of each router crossed, in order
    tls_wire: object | None = None                # lab.trace.wire.TlsOnTheWire, from the client's packets
    syn_at: float | None = None                   # when the client's SYN left (wire clock, seconds of the day)
    family_asked: int | None = None               # lab trace -4 / -6; None: curl chose

    def on_curl_clock(self, moment: float) -> float:
        """A wire time as ms on the trace's axis: the client's SYN left when curl's connect began."""
        return self.curl.lookup_ms + (moment - (self.syn_at or moment)) * 1000


@dataclass
class Outcome:
    ok: bool
    category: str                 # "ok", "dns.nxdomain", "tcp.refused", "tls.untrusted", ...
    step: str | None              # the step kind where the journey ended (None: it did not fail)
    node: str | None              # the node that decided the outcome
    reason: str                   # in words, for the summary

    def as_dict(self) -> dict:
        return {"ok": self.ok, "category": self.category, "step": self.step, "node": self.node,
                "reason": self.reason}


def classify(evidence: Evidence) -> Outcome:
    """The one outcome of a traced request, from its evidence (first failure in journey order)."""
    for check in (_dns, _connect, _tls, _exchange, _http):
        outcome = check(evidence)
        if outcome is not None:
            return outcome
    status = evidence.curl.status
    served = evidence.app or evidence.target or evidence.address
    return Outcome(True, "ok", None, served, f"{status} from {served}")


def _dns(e: Evidence) -> Outcome | None:
    dns = e.dns
    if dns is None:
        return None
    if dns.status == "NOERROR" and any(f" {dns.type} " in f" {r} " for r in dns.answer):
        return None
    if dns.status == "NXDOMAIN":
        said = next((s.server for s in reversed(dns.steps) if s.outcome == "nxdomain"), None)
        who = said or dns.resolver
        where = f"{said} says" if said else f"{dns.resolver} says (from its cache)"
        return Outcome(False, "dns.nxdomain", "dns", who, f"NXDOMAIN: {where} {dns.name} does not exist")
    if dns.status == "NOERROR":
        said = next((s.server for s in reversed(dns.steps) if s.outcome in ("nodata", "answer")), dns.resolver)
        return Outcome(False, "dns.no-address", "dns", said, f"no address: {dns.name} has no {dns.type} record ({said})")
    if dns.status == "SERVFAIL":
        silent = [s.server for s in dns.steps if s.outcome == "no reply"]
        why = f" ({', '.join(dict.fromkeys(silent))} did not reply)" if silent else ""
        return Outcome(False, "dns.servfail", "dns", dns.resolver, f"SERVFAIL from {dns.resolver}{why}")
    if dns.status:
        return Outcome(False, f"dns.{dns.status.lower()}", "dns", dns.resolver, f"{dns.status} from {dns.resolver}")
    return Outcome(False, "dns.timeout", "dns", dns.resolver,
                   f"no answer from the resolver {dns.resolver} after {e.curl.lookup_ms:.0f} ms")


def _decided(e: Evidence, *actions: str) -> FirewallDecision | None:
    return next((f for f in e.firewalls if f.action in actions and f.rose > 0), None)


def _connect(e: Evidence) -> Outcome | None:
    curl = e.curl
    if curl.connected_ms is not None or curl.status or curl.exit_code == 0:
        return None
    peer = e.target or e.address or e.host
    outside = "" if e.target or not e.address else f" (no node of the lab has {e.address})"
    spent = f"{curl.total_ms - curl.lookup_ms:.1f} ms"
    if curl.said("connection refused"):
        rule = _decided(e, "reject")
        if rule:
            return Outcome(False, "tcp.refused", FIREWALL_STEP, rule.firewall,
                           f"refused by {rule.firewall}: rule '{rule.rule}' rejects tcp/{e.port} ({spent})")
        return Outcome(False, "tcp.refused", "tcp", peer,
                       f"refused by {peer}: nothing listens on port {e.port} ({spent})")
    if curl.said("no route to host", "network is unreachable", "host is unreachable"):
        return Outcome(False, "tcp.no-route", "tcp", peer, f"no route to {e.address or e.host}{outside} ({spent})")
    if curl.said("connection reset"):
        return Outcome(False, "tcp.reset", "tcp", peer, f"{peer} reset the connection ({spent})")
    if curl.exit_code == TIMED_OUT:
        rule = _decided(e, "deny")
        if rule:
            return Outcome(False, "tcp.dropped", FIREWALL_STEP, rule.firewall,
                           f"dropped by {rule.firewall}: rule '{rule.rule}' drops tcp/{e.port}{outside}; "
                           f"no answer in {spent}")
        return Outcome(False, "tcp.timeout", "tcp", peer, f"no answer from {peer}{outside} in {spent}")
    if curl.exit_code == RESOLVE_FAILED:
        return Outcome(False, "dns.failed", "dns", e.dns.resolver if e.dns else e.client, curl.error)
    return Outcome(False, "tcp.failed", "tcp", peer, curl.error or f"curl exit status {curl.exit_code}")


TLS_PROBLEMS = (
    ("tls.name-mismatch", ("no alternative certificate subject name", "does not match target host")),
    ("tls.expired", ("certificate has expired", "certificate is not yet valid")),
    ("tls.untrusted", ("unable to get local issuer certificate", "self-signed certificate",
                       "self signed certificate", "unable to verify the first certificate",
                       "certificate signature failure")),
    ("tls.protocol", ("wrong version number", "protocol version", "handshake failure", "no shared cipher",
                      "unsupported protocol", "alert")),
)


def tls_failed(e: Evidence) -> bool:
    curl = e.curl
    return e.https and not curl.status and (curl.exit_code in TLS_EXITS or curl.verify_ok is False)


def _tls(e: Evidence) -> Outcome | None:
    curl = e.curl
    if not tls_failed(e):
        return None
    peer = e.target or e.address or e.host
    category = next((name for name, phrases in TLS_PROBLEMS if curl.said(*phrases)), "tls.failed")
    names = e.certificate_names or curl.certificate_names
    carries = f"; the certificate names {', '.join(names)}" if names else ""
    problem = curl.error.removeprefix("SSL certificate problem: ").removeprefix("SSL: ")
    if category == "tls.untrusted":
        reason = f"{e.client} does not trust the certificate {peer} presented: {problem}{carries}"
    elif category == "tls.name-mismatch":
        reason = f"the certificate {peer} presented is not for {e.host}{carries}"
    else:
        reason = f"TLS with {peer} failed: {problem}{carries}"
    return Outcome(False, category, "tls", peer, reason)


def _exchange(e: Evidence) -> Outcome | None:
    """Connected (and TLS done) but no HTTP answer came back."""
    curl = e.curl
    if curl.status or curl.exit_code == 0:
        return None
    peer = e.target or e.address or e.host
    if curl.exit_code == TIMED_OUT:
        return Outcome(False, "http.timeout", "request", peer, f"no answer from {peer} within {curl.total_ms:.0f} ms")
    if curl.exit_code == EMPTY_REPLY:
        return Outcome(False, "http.empty", "request", peer, f"{peer} closed the connection without an answer")
    if curl.said("connection reset"):
        return Outcome(False, "http.reset", "request", peer, f"{peer} reset the connection")
    return Outcome(False, "http.failed", "request", peer, curl.error)


def _http(e: Evidence) -> Outcome | None:
    status = e.curl.status or 0
    if status < 400:
        return None
    app_status = int((e.app_line or {}).get("status") or 0)
    if e.app and app_status == status:
        error = (e.app_line or {}).get("db_error")
        if error and e.database:
            return Outcome(False, "db.unavailable", "db", e.database,
                           f"{e.app} could not use {e.database}: {error} (it answered {status})")
        return Outcome(False, "app.error" if status >= 500 else "http.client-error", SERVER_STEP, e.app,
                       f"{e.app} answered {status}" + _body_reason(e.curl))
    producer = e.lb or e.target or e.address or e.host
    if e.lb and e.attempts and all(a.status in ("502", "503", "504") or not a.status for a in e.attempts):
        return Outcome(False, _upstream_category(e.attempts), "lb", e.lb,
                       f"{e.lb} answered {status} itself: no app server answered "
                       f"({'; '.join(_attempt_text(a, e.names) for a in e.attempts)})")
    if e.lb and not e.attempts and status >= 500:
        return Outcome(False, "http.lb", "lb", e.lb, f"{e.lb} answered {status} itself (no upstream tried)")
    kind = "lb" if e.lb else "request"
    return Outcome(False, "http.server-error" if status >= 500 else "http.client-error", kind, producer,
                   f"{producer} answered {status}")


def _body_reason(curl: CurlResult) -> str:
    text = curl.body.strip()
    return f": {text[:120]}" if text.startswith("{") else ""


def is_group(attempt: Attempt) -> bool:
    """nginx logs the upstream group's name instead of an address when no server was left to try."""
    return ":" not in attempt.address


def attempt_failure(attempt: Attempt) -> str:
    """What nginx's access log says about one upstream attempt, in words."""
    if is_group(attempt):
        return "no server left to try (the others are marked down after recent failures)"
    if attempt.connect_ms is None and attempt.status == "504":
        return f"connect timed out after {attempt.response_ms or 0:.0f} ms"
    if attempt.connect_ms is None and attempt.status == "502":
        return "connect refused or unreachable" + (f" after {attempt.response_ms:.0f} ms" if attempt.response_ms else "")
    if attempt.status == "504":
        return f"connected, then no answer within {attempt.response_ms or 0:.0f} ms"
    if attempt.status == "502":
        return "connected, then the connection broke (reset or invalid answer)"
    return f"answered {attempt.status or 'nothing'}"


def _attempt_text(attempt: Attempt, names: dict[str, str]) -> str:
    server = names.get(attempt.address.rsplit(":", 1)[0], attempt.address)
    return f"{server}: {attempt_failure(attempt)}"


def _upstream_category(attempts: list[Attempt]) -> str:
    tried = [a for a in attempts if not is_group(a)]
    if not tried:
        return "upstream.none-live"
    last = tried[-1]
    if last.connect_ms is None:
        return "upstream.timeout" if last.status == "504" else "upstream.refused"
    return "upstream.read-timeout" if last.status == "504" else "upstream.broken"
