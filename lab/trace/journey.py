"""`lab trace URL`: run a real request from a client node and tell its journey from evidence.

The request is a real curl in the client, resolving the name through the node's
own stub resolver while the resolver records its DNS packets (lab.trace.dns), with
a W3C traceparent of ours. Its timings, exit code, TLS details and response headers
come from curl itself. The firewalls' rule counters are read before and after, so
the rule that decided is the one whose counter rose; the path is computed from the
lab's routes (marked derived). The lb's choice and attempts come from its own JSON
log line for our trace id, the app's and database's work from the app's own line.
lab.trace.outcome turns all of it into one outcome; lab.trace.steps into steps.
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from lab.interrupts import map_settled, settled
from lab.kinds import registry
from lab.kinds.registry import HTTP_BALANCER, PACKET_FILTER
from lab.firewall.explain import STATE_RULES, computed_verdicts, confirm, counter_deltas
from lab.firewall.path import flow_path
from lab.firewall.policy import node_policy
from lab.backends.protocol import Backend
from lab.errors import LabError, RuntimeFailure, UsageError
from lab.firewall.live import read_counters
from lab.trace import resolver as dns_evidence
from lab.topology import Lab
from lab.trace.dns import lookup_from_packets, with_stub
from lab.trace.model import Step, Trace
from lab.trace.routing import add_as_path, as_path_note, live_lookup
from lab.trace.outcome import Evidence, FirewallDecision, classify, tls_failed
from lab.trace.pcap import attach, recorded_nodes, request_of
from lab.trace.shaping import PathShaping
from lab.trace.steps import client_steps, dns_step, owner_of, summary_of
from lab.trace.wire import (Packet, client_syn, hop_view, parse_packets, start_command, stop_command,
                            tls_on_the_wire)
from lab.trace.web import (RequestOptions, certificate_probe, curl_command, family_of, find_log_line,
                           parse_certificate_names,
                           parse_curl, upstream_attempts, upstream_that_answered)

MAX_REDIRECTS = 5


@dataclass
class Target:
    url: str
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    """The URL's parts, or a UsageError saying what is wrong with it (never a traceback)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UsageError(f"'{url}' has a bad port or address: {error} (ports are 1-65535)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"'{url}' is not an http:// or https:// URL (for example https://www.shop.test/)")
    if ":" in parts.hostname:
        raise UsageError(f"'{url}' names an IPv6 address: the lab has IPv4 only")
    if not re.fullmatch(r"[a-z0-9_.-]+", parts.hostname):
        raise UsageError(f"'{url}' has a host name with characters DNS names cannot have: '{parts.hostname}'")
    if port == 0:
        raise UsageError(f"'{url}' has port 0 (ports are 1-65535)")
    return Target(url, parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def default_client(lab: Lab) -> str:
    """The node a trace runs from when not told (the lab's one rule: Lab.default_client)."""
    client = lab.default_client()
    if client is None:
        raise UsageError("this lab has no client node to trace from: give --from NODE")
    return client


def trace_url(backend: Backend, lab: Lab, url: str, source: str | None = None, options: RequestOptions | None = None,
              follow: bool = False, pcap: Path | None = None) -> Trace:
    """Trace one request; with follow, a redirect's target is traced too (trace.redirected_to);
    with pcap, its packets at every hop are written there (the first request's only)."""
    target = parse_target(url)
    source = source or default_client(lab)
    if source not in lab.instance_names():
        raise UsageError(f"lab '{lab.name}' has no node '{source}' (nodes: {', '.join(lab.instance_names())})")
    trace = _trace_one(backend, lab, target, source, options or RequestOptions(), pcap)
    last, hops = trace, 0
    while follow and last.status in (301, 302, 303, 307, 308) and hops < MAX_REDIRECTS:
        location = last.outcome.get("location") or ""
        if not location:
            break
        last.redirected_to = _trace_one(backend, lab, parse_target(urljoin(last.url, location)), source,
                                        options or RequestOptions())
        last, hops = last.redirected_to, hops + 1
    return trace


def _request_path(backend: Backend, lab: Lab, source: str, owner, address: str, port: int):
    """The way the request went, in the family curl used (an IPv6 connection crossed the
    firewalls' ip6tables rules, over the IPv6 routes). Over IPv6 a lab whose routers carry no
    IPv6 route (BGP/OSPF announce IPv4 only) has no computed path: None, and the firewall step
    reads the counters alone."""
    destination = ip_address(address)
    try:
        return flow_path(lab, lab.instance(source), owner, "tcp", port, live_lookup(backend, lab),
                         destination=destination)
    except LabError:
        if destination.version == 4:
            raise
        return None


def _trace_one(backend: Backend, lab: Lab, target: Target, source: str, options: RequestOptions,
               pcap: Path | None = None) -> Trace:
    trace_id = secrets.token_hex(16)
    firewalls = [i.name for i in lab.instances if registry.is_a(i.kind, PACKET_FILTER)]
    command = curl_command(target.url, f"00-{trace_id}-{secrets.token_hex(8)}-01", options)
    capture = secrets.token_hex(6)
    # with --pcap, every hop records first (its helpers removed when this block ends, however)
    with backend.record(lab.name, recorded_nodes(lab, source)) if pcap else nullcontext() as hops:
        recording = start_recording(backend, lab, source, target, firewalls, capture)
        try:
            code, out, err = _run(backend, lab.name, source, command)
        finally:
            packets, wire, after = stop_recording(backend, lab, recording, firewalls, capture)
        captures = hops.stop() if hops is not None else []
    before, resolver = recording.before, recording.resolver
    curl = parse_curl(code, out, err)
    # The cache's answer of the family curl connected with (AAAA when -6, or when it chose IPv6).
    rtype = "AAAA" if family_of(curl.connected_to) == "IPv6" or options.family == 6 else "A"
    stub = dns_evidence.stub_answer(backend, lab.name, source, recording.stub_since, target.host, rtype) \
        if recording.stub_since is not None else None
    evidence = Evidence(client=source, host=target.host, port=target.port, https=target.scheme == "https",
                        curl=curl, names={str(a): i.name for i in lab.instances for a in i.all_addresses()},
                        family_asked=options.family)
    if resolver is not None:
        book = backend.address_book(lab.name)
        evidence.dns = with_stub(lookup_from_packets(packets, source, resolver, book, target.host, curl.lookup_ms,
                                                     rtype),
                                 stub)
    evidence.address = curl.timings.get("remote_ip") or _resolved(evidence) or \
        (target.host if _is_address(target.host) else None)
    _read_wire(evidence, wire, source, target.port)
    owner = owner_of(lab, evidence.address) if evidence.address else None
    evidence.target = owner.name if owner else None
    path = _request_path(backend, lab, source, owner, evidence.address, target.port) if owner else None
    shaping = PathShaping(backend, lab, path, source)   # read while the servers' logs are
    if path:
        verdicts = [confirm(v, before[v.firewall], after[v.firewall]) for v in computed_verdicts(lab, path)]
        evidence.firewalls = [FirewallDecision(v.firewall, v.rule.name, v.action, v.rose.get(v.rule.name, 0),
                                               v.confirmed) for v in verdicts]
    elif evidence.address and (curl.connected_ms is None or curl.status):
        evidence.firewalls = _decisions_seen(lab, before, after)
    if owner is not None and curl.status:
        _read_server_logs(backend, lab, trace_id, owner.name, evidence)
    if tls_failed(evidence) and evidence.address:
        _, text, _ = _run(backend, lab.name, source,
                                       certificate_probe(evidence.address, target.port, target.host))
        evidence.certificate_names = parse_certificate_names(text)
    outcome = classify(evidence)
    trace = Trace(url=target.url, lab=lab.name, client=source, ok=outcome.ok, total_ms=round(curl.total_ms, 3),
                  status=curl.status, summary="", trace_id=trace_id, outcome=outcome.as_dict())
    if curl.timings.get("redirect_url"):
        trace.outcome["location"] = curl.timings["redirect_url"]
    if evidence.dns is not None:
        # curl reports ~0.1 ms for a lookup that failed, whatever the wait: the resolver's own
        # packets (the client's queries, search domains included, and their replies) bound it
        waited = curl.lookup_ms if curl.exit_code != 6 else max(curl.lookup_ms, evidence.dns.client_span_ms or 0.0)
        trace.steps.append(dns_step(evidence.dns, waited, outcome))
        trace.total_ms = round(max(trace.total_ms, waited), 3)
    if outcome.step != "dns":
        trace.steps.extend(client_steps(evidence, outcome, path))
        if path is not None:
            add_as_path(trace.steps, as_path_note(backend, lab, path))
    shaping.annotate(trace, [evidence.app, evidence.database], curl,
                     sum(a.response_ms or 0.0 for a in evidence.attempts))   # the lb's log: the upstream's time
    trace.summary = summary_of(trace)
    if pcap:
        attach(trace, pcap, captures, request_of(evidence, lab), evidence.https)
    return trace


@dataclass
class Recording:
    watchers: list[str]                 # nodes whose tcpdump listens
    resolver: tuple[str, str] | None    # (node, address) recording DNS, None for an address URL
    before: dict                        # each firewall's counters before the request
    stub_since: int | None = None       # the source's own DNS cache log's size before (None: no cache)


def start_recording(backend: Backend, lab: Lab, source: str, target: Target, firewalls: list[str],
                     capture: str) -> Recording:
    """Everything the request needs in place, at once: the counters before, the captures listening
    on the wire and at the resolver (wall time is the slowest of them, not their sum)."""
    nodes = [source, *(i.name for i in lab.instances if registry.get(i.kind).forwards)]
    with ThreadPoolExecutor(max_workers=len(firewalls) + 2) as pool:
        counting = {fw: pool.submit(read_counters, backend, lab.name, fw) for fw in firewalls}
        wiring = pool.submit(_start_wire, backend, lab, nodes, capture, target.port)
        asking = None if _is_address(target.host) else pool.submit(_start_dns_capture, backend, lab, source, capture)
        # where the source's own DNS cache log ends now: its lines after this are this lookup's
        sizing = None if _is_address(target.host) else pool.submit(dns_evidence.stub_log_size, backend,
                                                                    lab.name, source)
        try:
            settled([wiring, *counting.values(), *(job for job in (asking, sizing) if job)])
            before = {fw: job.result() for fw, job in counting.items()}
            return Recording(wiring.result(), asking.result() if asking else None, before,
                              sizing.result() if sizing else None)
        except BaseException:   # a failure or a signal: nothing may keep capturing after a trace that never ran
            if not wiring.cancelled() and wiring.exception() is None:
                _stop_wire(backend, lab, wiring.result(), capture)
            if asking is not None and not asking.cancelled() and asking.exception() is None:
                dns_evidence.stop_capture(backend, lab.name, asking.result()[0], capture)
            raise


def stop_recording(backend: Backend, lab: Lab, recording: Recording, firewalls: list[str], capture: str):
    """(DNS packets, each node's wire packets, each firewall's counters after), read at once."""
    with ThreadPoolExecutor(max_workers=len(firewalls) + 2) as pool:
        reading = pool.submit(dns_evidence.stop_capture, backend, lab.name, recording.resolver[0], capture) \
            if recording.resolver else None
        unwiring = pool.submit(_stop_wire, backend, lab, recording.watchers, capture)
        counting = {fw: pool.submit(read_counters, backend, lab.name, fw) for fw in firewalls}
        settled([unwiring, *counting.values(), *([reading] if reading else [])])
        return (reading.result() if reading else [], unwiring.result(),
                {fw: job.result() for fw, job in counting.items()})


def _start_dns_capture(backend: Backend, lab: Lab, source: str, capture: str) -> tuple[str, str]:
    """The resolver the source asks (its resolv.conf), recording DNS from now on."""
    resolver = dns_evidence.resolver_of_node(backend, lab.name, source)
    dns_evidence.start_capture(backend, lab.name, resolver[0], capture)
    return resolver


def _start_wire(backend: Backend, lab: Lab, nodes: list[str], capture: str, port: int) -> list[str]:
    """Start tcpdump on the client and every router and firewall, at once; the nodes where it runs
    (a stopped router records nothing: the hops before it tell where the packets stopped)."""
    def start(node: str) -> tuple[str, int, RuntimeFailure | None]:
        command = start_command(capture, port, client=node == nodes[0])
        try:
            return node, _run(backend, lab.name, node, command)[0], None
        except RuntimeFailure as failure:
            return node, -1, failure

    started = map_settled(start, dict.fromkeys(nodes), 8)
    running = [node for node, code, _ in started if code == 0]
    client_failure = next((failure for node, _, failure in started if node == nodes[0] and failure), None)
    if client_failure is not None:   # the client itself: no trace, and nothing may keep capturing
        try:
            _stop_wire(backend, lab, running, capture)
        finally:
            raise client_failure   # the client's reason, even if a router went away meanwhile
    return running


def _stop_wire(backend: Backend, lab: Lab, nodes: list[str], capture: str) -> dict[str, list[Packet]]:
    def stop(node: str) -> tuple[str, list[Packet]]:
        return node, parse_packets(_run(backend, lab.name, node, stop_command(capture))[1])

    return dict(map_settled(stop, nodes, 8))


def _read_wire(evidence: Evidence, wire: dict[str, list[Packet]], source: str, port: int) -> None:
    """Each router's view of the connection (in path order: the order its SYN reached them) and
    the TLS handshake's parts, from the client's packets."""
    remote = evidence.address
    mine = wire.get(source, [])
    local_port = int(evidence.curl.timings.get("local_port") or 0)
    syn = client_syn(mine, local_port, remote, port) if local_port else \
        next((p for p in reversed(mine) if p.syn and p.direction == "Out" and p.dst == remote and p.dport == port), None)
    if syn is None or syn.seq is None:
        return
    evidence.syn_at = syn.time
    views = [hop_view(node, packets, syn.seq) for node, packets in wire.items() if node != source]
    evidence.hops = sorted((v for v in views if v.seen), key=lambda v: v.syn_in.time)
    if evidence.https:
        evidence.tls_wire = tls_on_the_wire(mine, syn)


def _decisions_seen(lab: Lab, before: dict, after: dict) -> list[FirewallDecision]:
    """For an address no node has (so no path to compute): the deciding rule whose counter
    rose on each firewall, as the counters alone tell it."""
    decisions = []
    for firewall in before:
        rose = {name: n for name, n in counter_deltas(before[firewall], after[firewall], "FORWARD").items()
                if name not in STATE_RULES}
        if rose:
            rule = max(rose, key=rose.get)
            policy = {r.name: r for r in node_policy(lab, lab.instance(firewall).node)}
            action = policy[rule].action if rule in policy else "allow"
            decisions.append(FirewallDecision(firewall, rule, action, rose[rule], True))
    return decisions


def _read_server_logs(backend: Backend, lab: Lab, trace_id: str, target: str, evidence: Evidence) -> None:
    """The lb's and the app's own log lines for our trace id (who answered, and what it did)."""
    if registry.is_a(lab.instance(target).kind, HTTP_BALANCER):
        evidence.lb = target
        evidence.lb_line = find_log_line(_log_text(backend, lab.name, target), trace_id)
        evidence.attempts = upstream_attempts(evidence.lb_line) if evidence.lb_line else []
        candidates = [evidence.names.get(a.address.rsplit(":", 1)[0]) for a in evidence.attempts]
    else:
        candidates = [target]
    served_by = evidence.curl.headers.get("x-served-by")
    for name in dict.fromkeys([served_by, *reversed(candidates)]):
        if name and name in lab.instance_names():
            line = find_log_line(_log_text(backend, lab.name, name), trace_id)
            if line is not None:
                evidence.app, evidence.app_line = name, line
                evidence.database = _database_of(lab, name)
                return
    # A server that logs no line with the trace id (your own service): the lb's log still
    # says which upstream answered; the step is then derived from that, not observed there.
    answered = upstream_that_answered(evidence.attempts, evidence.names)
    if answered in lab.instance_names():
        evidence.app = answered
        evidence.database = _database_of(lab, answered)


def _run(backend: Backend, lab: str, node: str, command: list[str]) -> tuple[int, str, str]:
    result = backend.exec(lab, node, command)
    return result.code, result.stdout, result.stderr


def _log_text(backend: Backend, lab: str, node: str, tail: int = 300) -> str:
    """The last lines of a node's log, as text (empty when the node is gone)."""
    try:
        return b"".join(backend.logs(lab, node, tail=tail)).decode(errors="replace")
    except RuntimeFailure:
        return ""


def _database_of(lab: Lab, instance: str) -> str | None:
    node = lab.spec.nodes.get(lab.instance(instance).node)
    database = registry.get(node.kind).database_of(node) if node else None
    replicas = lab.instances_of(database) if database else []
    return replicas[0].name if replicas else None


def _resolved(evidence: Evidence) -> str | None:
    """The first A record of the lookup ('www.shop.test. A 198.18.10.10'; a CNAME chain comes first)."""
    for record in evidence.dns.answer if evidence.dns else []:
        fields = record.split()
        if len(fields) >= 3 and fields[-2] == "A" and _is_address(fields[-1]):
            return fields[-1]
    return None


def _is_address(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


__all__ = ["trace_url", "default_client", "parse_target", "Step"]
