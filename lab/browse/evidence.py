"""What the lab recorded about each request of a page load, and about the page's name lookup.

Pure functions over evidence gathered by lab/browse/run.py: the load balancer's and the
servers' JSON log lines (found by the request's trace id, which the lb returns as X-Trace-Id
and Chromium reports among the response headers), the client's DNS cache log (dnsmasq) and
the DNS packets the ISP's resolver saw. Every sentence is a Claim, observed (it names the
record it was read from) or derived (it says what it was worked out from).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable

from lab.browse.har import NETWORK, REVALIDATED, Entry, Visit
from lab.trace.outcome import attempt_failure, is_group
from lab.trace.stub import CACHE, FORWARDED, NOT_ASKED
from lab.trace.web import find_log_line, upstream_attempts

OBSERVED, DERIVED = "observed", "derived"


@dataclass
class Claim:
    text: str
    source: str            # OBSERVED or DERIVED
    where: str             # the record it was read from, or what it was worked out from

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LabEvidence:
    """The lab's own record of one request that reached it."""

    trace_id: str
    lb: str | None = None               # the balancer whose log holds the trace id
    lb_status: int | None = None
    chosen: list[str] = field(default_factory=list)    # upstreams the lb tried, in order
    server: str | None = None           # the upstream whose own log holds the trace id
    server_status: int | None = None
    server_ms: float | None = None
    database: str | None = None         # the server's database (the topology's wiring)
    db_ms: float | None = None
    db_queries: int | None = None
    failed_at: str | None = None        # the node where the request failed, when it did
    pool: str | None = None             # the pool the lb logged instead of a server: none was left
    pool_members: list[str] = field(default_factory=list)   # that pool's servers (the topology's)
    claims: list[Claim] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**asdict(self), "claims": [c.as_dict() for c in self.claims]}


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def lab_evidence(trace_id: str, lb: str, lb_log: str, server_log: Callable[[str], str],
                 names: dict[str, str], database_of: Callable[[str], str | None],
                 pools: dict[str, list[str]] | None = None) -> LabEvidence:
    """One request's record: the lb's line (its status, the upstreams it tried), then the line
    of the upstream that holds the trace id (its time; an app's SQL statements and time)."""
    found = LabEvidence(trace_id)
    line = find_log_line(lb_log, trace_id)
    if line is None:
        found.claims.append(Claim(f"{lb}'s log has no line with this trace id", OBSERVED, f"{lb}'s access log"))
        return found
    found.lb, found.lb_status = lb, int(line.get("status") or 0) or None
    attempts = upstream_attempts(line)
    found.chosen = [names.get(a.address.rsplit(":", 1)[0], a.address) for a in attempts if not is_group(a)]
    for attempt, node in zip([a for a in attempts if not is_group(a)], found.chosen):
        found.claims.append(Claim(f"{lb} sent it to {node}: {attempt_failure(attempt)}", OBSERVED,
                                  f"{lb}'s access log"))
    group = next((a for a in attempts if is_group(a)), None)
    if group is not None:
        found.pool = group.address
        found.claims.append(Claim(f"{lb}, pool {group.address}: {attempt_failure(group)}", OBSERVED,
                                  f"{lb}'s access log"))
        members = (pools or {}).get(group.address)
        if members:
            found.pool_members = members
            found.claims.append(Claim(f"pool {group.address} is {', '.join(members)}", DERIVED,
                                      f"the topology: {lb}'s upstreams"))
    if not attempts:
        found.claims.append(Claim(f"{lb} answered {found.lb_status} itself (no upstream)", OBSERVED,
                                  f"{lb}'s access log"))
    for node in reversed(found.chosen):
        own = find_log_line(server_log(node), trace_id)
        if own is not None:
            _read_server_line(found, node, own, database_of(node))
            break
    else:
        if found.chosen:
            found.claims.append(Claim(f"no log line of {', '.join(dict.fromkeys(found.chosen))} holds this "
                                      "trace id", OBSERVED, "their logs"))
    if found.lb_status and found.lb_status >= 500:
        found.failed_at = found.chosen[-1] if found.chosen and found.server is None else (found.server or lb)
    return found


def _read_server_line(found: LabEvidence, node: str, line: dict, database: str | None) -> None:
    found.server, found.server_status = node, int(line.get("status") or 0) or None
    found.server_ms = _number(line.get("app_ms"))
    time = f" in {found.server_ms:.1f} ms" if found.server_ms is not None else ""
    found.claims.append(Claim(f"{node} answered {found.server_status}{time}", OBSERVED, f"{node}'s own log line"))
    queries = line.get("db_queries")
    if queries:
        found.database, found.db_queries, found.db_ms = database, int(queries), _number(line.get("db_ms"))
        found.claims.append(Claim(f"{queries} SQL statement(s), {found.db_ms or 0:.1f} ms in the database",
                                  OBSERVED, f"{node}'s own log line"))
        if database:
            found.claims.append(Claim(f"the database is {database}", DERIVED, f"the topology: {node}'s database"))
    if line.get("db_error"):
        found.claims.append(Claim(f"database error: {line['db_error']}", OBSERVED, f"{node}'s own log line"))


def reached_the_lab(entry: Entry) -> bool:
    """Was this request sent (not answered by the browser's cache), with a trace id to find it by?"""
    return entry.cache in (NETWORK, REVALIDATED) and bool(entry.trace_id) and entry.status is not None


# --- the name: the OS's DNS cache and the ISP's resolver ----------------------------------

_STUB_LINE = re.compile(r"^(?P<stamp>\w{3}\s+\d+ \d\d:\d\d:\d\d) dnsmasq\[\d+\]: (?P<serial>\d+) \S+ "
                        r"(?P<what>query\[(?P<type>[A-Z0-9]+)\]|forwarded|cached|reply) (?P<name>\S+) ")


@dataclass
class NameLookup:
    """How one page load's name was found, as the node's DNS cache and the resolver recorded it."""

    visit: int
    name: str
    os_cache: str                       # CACHE, FORWARDED or NOT_ASKED (by dnsmasq's log)
    stub_node: str | None               # the node whose dnsmasq it is (None: the node has none)
    resolver: str | None
    resolver_queries: int               # queries for the name the resolver received in this load
    stub_outcomes: list[str] = field(default_factory=list)   # each lookup of the load, in order
    claims: list[Claim] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**asdict(self), "claims": [c.as_dict() for c in self.claims]}


def _stub_queries(log: str, name: str, year: int) -> list[tuple[float, str]]:
    """(unix second, what dnsmasq did) for each A query of name in its log, in order."""
    wanted, stamps, outcome = name.rstrip(".").lower(), {}, {}
    for line in log.splitlines():
        match = _STUB_LINE.match(line)
        if not match or match["name"].lower() != wanted:
            continue
        serial = match["serial"]
        if match["what"].startswith("query"):
            if match["type"] == "A":
                when = datetime.strptime(f"{year} {match['stamp']}", "%Y %b %d %H:%M:%S")
                stamps[serial], outcome[serial] = when.replace(tzinfo=timezone.utc).timestamp(), NOT_ASKED
        elif serial in outcome and match["what"] in ("cached", "forwarded"):
            outcome[serial] = CACHE if match["what"] == "cached" else FORWARDED
    return [(stamps[s], outcome[s]) for s in stamps]


def windows(visits: list[Visit]) -> list[tuple[float, float]]:
    """Each load's wall-clock span, whole seconds (dnsmasq stamps to the second): from its start's
    second to the next load's start (the driver starts each load on a new second)."""
    starts = [int(v.wall_start or 0) for v in visits]
    return [(start, starts[i + 1] if i + 1 < len(starts) else float("inf")) for i, start in enumerate(starts)]


def name_lookups(visits: list[Visit], name: str, stub_node: str | None, stub_log: str | None,
                 resolver: str | None, resolver_address: str | None, packets: list[dict]) -> list[NameLookup]:
    """Per load: what the node's DNS cache did with the name, and how many queries for it the
    resolver received (its own packets, whoever sent them: the home router hides the laptop)."""
    found = []
    year = datetime.fromtimestamp(visits[0].wall_start or 0, timezone.utc).year if visits else 1970
    queries = _stub_queries(stub_log or "", name, year)
    fqdn = name.rstrip(".").lower() + "."
    for visit, (start, end) in zip(visits, windows(visits)):
        mine = [what for when, what in queries if start <= when < end]
        outcome = mine[0] if mine else NOT_ASKED   # the load's first lookup: what it began with
        asked = [p for p in packets if not p.get("response") and p.get("dst") == resolver_address
                 and str(p.get("qname", "")).lower() == fqdn and start <= p.get("time", 0) < end]
        lookup = NameLookup(visit.number, name, outcome if stub_node else NOT_ASKED, stub_node, resolver, len(asked),
                            stub_outcomes=mine if stub_node else [])
        lookup.claims = _lookup_claims(lookup, stub_log is not None, resolver_address is not None)
        found.append(lookup)
    return found


def _lookup_claims(lookup: NameLookup, had_log: bool, captured: bool) -> list[Claim]:
    claims = []
    if lookup.stub_node and had_log:
        where = f"{lookup.stub_node}'s dnsmasq log"
        said = {CACHE: f"the OS's DNS cache (dnsmasq on {lookup.stub_node}) answered {lookup.name} from its cache",
                FORWARDED: f"the OS's DNS cache (dnsmasq on {lookup.stub_node}) did not hold {lookup.name}: "
                           f"it asked {lookup.resolver or 'the resolver'}",
                NOT_ASKED: f"the OS's DNS cache (dnsmasq on {lookup.stub_node}) logged no query for "
                           f"{lookup.name} in this load"}[lookup.os_cache]
        if len(lookup.stub_outcomes) > 1:   # a redirect to another scheme looks the name up again
            said = (f"the OS's DNS cache (dnsmasq on {lookup.stub_node}) was asked {len(lookup.stub_outcomes)} times "
                    f"for {lookup.name}: " + ", then ".join("from its cache" if o == CACHE else
                                                          f"asked {lookup.resolver or 'the resolver'}"
                                                          for o in lookup.stub_outcomes))
        claims.append(Claim(said, OBSERVED, where))
    if captured:
        text = (f"no new query for {lookup.name} at {lookup.resolver}" if not lookup.resolver_queries else
                f"{lookup.resolver} received {lookup.resolver_queries} query(ies) for {lookup.name}")
        claims.append(Claim(text, OBSERVED, f"{lookup.resolver}'s packets (udp 53)"))
    return claims
