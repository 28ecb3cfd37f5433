"""Turning evidence into the steps of a trace: who did what, when, and how we know.

Client-side steps (dns, tcp, tls, request, transfer) are placed on the
client's own clock, so they tile its measured total. Server-side steps (lb,
app, db) carry the time each server measured itself, drawn centred inside the
step that contains them (their exact start is not observable from outside).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from lab.firewall.explain import Verdict
from lab.firewall.path import FlowPath
from lab.runtime.inspect import log_text
from lab.topology import Instance, Lab
from lab.trace.dns import DnsTrace
from lab.trace.model import Step, Trace
from lab.trace.web import CurlResult, find_log_line, server_timing, upstream_attempts


PAST = {"allow": "allowed", "deny": "denied", "reject": "rejected"}
# Where a failed journey really stopped: the origin of an error before the steps it broke.
ORIGIN_ORDER = ("dns", "firewall", "tcp", "tls", "db", "app", "lb", "request", "transfer", "path")
CONNECT_TIMEOUT_MS = 3000.0   # curl --connect-timeout 3 (lab.trace.web.curl_command)


def owner_of(lab: Lab, address: str) -> Instance | None:
    wanted = IPv4Address(address)
    return next((i for i in lab.instances if wanted in i.addresses.values()), None)


def _name_of(lab: Lab, address: str) -> str:
    owner = owner_of(lab, address.rsplit(":", 1)[0]) if address else None
    return owner.name if owner else address


def dns_step(dns: DnsTrace, dns_ms: float) -> Step:
    children, at = [], 0.0
    for asked in dns.steps:
        duration = asked.duration_ms or 0.0
        said = {"referral": f"referral to {asked.zone} (NS {', '.join(asked.ns)}; glue {', '.join(asked.glue)})",
                "answer": f"answer {', '.join(asked.answer)}"}.get(asked.outcome, asked.outcome.upper())
        children.append(Step("dns", f"{asked.server} asked for {asked.query}", asked.server, at, duration,
                             ok=asked.outcome in ("answer", "referral", "nodata"), detail=said,
                             peer=dns.resolver))
        at += duration
    addresses = ", ".join(record.split()[-1] for record in dns.answer) or "no address"
    ok = dns.status == "NOERROR" and bool(dns.answer)
    if ok:
        detail = f"{dns.name} is {addresses}" + (" (from the resolver's cache)" if dns.from_cache else "")
    else:
        said_it = next((c.node for c in children if c.detail in ("NXDOMAIN", "SERVFAIL", "REFUSED")), None)
        detail = f"{dns.name}: {dns.status}" + (f" from {said_it}" if said_it else " (from the resolver's cache)"
                                               if dns.from_cache else "")
    evidence = [f"{dns.resolver} ({dns.resolver_address}) sent {len(dns.steps)} queries upstream "
                "(its own packets, captured with tcpdump in its container)"]
    if dns.resolver_ms is not None:
        evidence.append(f"the resolver answered in {dns.resolver_ms:.1f} ms; the client waited {dns_ms:.1f} ms")
    return Step("dns", f"DNS lookup of {dns.name} by {dns.resolver}", dns.resolver, 0.0, dns_ms, ok, detail,
                evidence, peer=dns.client, children=children)


def path_step(lab: Lab, path: FlowPath, dns_ms: float, curl: CurlResult) -> Step:
    hops = [hop.instance.name for hop in path.hops]
    notes = [note for hop in path.hops for note in hop.notes] + list(path.notes)
    route = " → ".join([path.source.name, *hops, path.target.name])
    return Step("path", f"packets cross {len(hops)} routers", path.source.name, dns_ms + curl.ms("time_namelookup"),
                max(curl.ms("time_connect") - curl.ms("time_namelookup"), 0.0), True, route,
                ["computed from the lab's routes (lab/plan/routes.py), the same ones the nodes run", *notes],
                peer=path.target.name)


def firewall_steps(verdicts: list[Verdict], dns_ms: float, curl: CurlResult) -> list[Step]:
    steps = []
    for verdict in verdicts:
        flow = verdict.flow
        ok = verdict.action == "allow"
        rose = verdict.rose.get(verdict.rule.name, 0)
        detail = (f"rule '{verdict.rule.name}' {'allowed' if ok else PAST[verdict.action]} "
                  f"{flow.proto}/{flow.port} from {flow.source} to {flow.destination}")
        evidence = [f"counter of rule '{verdict.rule.name}' rose by {rose} packet(s) (iptables-save -c, "
                    "read before and after the request)"]
        if verdict.mismatch:
            evidence.append(verdict.mismatch)
        # The decision is taken on the first packet: it lasts as long as the connect did
        # (or the client's whole connect timeout when nothing came back).
        duration = curl.ms("time_connect") or CONNECT_TIMEOUT_MS
        steps.append(Step("firewall", f"firewall {verdict.firewall} decides", verdict.firewall, dns_ms, duration,
                          ok and verdict.confirmed is not False, detail, evidence))
    return steps


def request_steps(client, lab: Lab, trace_id: str, source: str, target: str, curl: CurlResult, t0: float,
                  https: bool) -> list[Step]:
    connect, tls_done = curl.ms("time_connect"), curl.ms("time_appconnect")
    ip = curl.timings.get("remote_ip", "")
    if connect == 0:
        return [Step("tcp", f"TCP connection to {target}", source, t0, CONNECT_TIMEOUT_MS, False,
                     curl.error or "no connection", [f"curl: {curl.error}"], peer=target)]
    steps = [Step("tcp", f"TCP connection to {target}", source, t0 + curl.ms("time_namelookup"),
                  connect - curl.ms("time_namelookup"), True, f"connected to {ip}:{curl.timings.get('remote_port')}",
                  ["curl time_connect"], peer=target)]
    sent_at = connect
    if https:
        ok = tls_done > 0 and curl.verify_ok is not False
        detail = (f"{curl.tls_version}, {curl.cipher}; certificate {curl.subject}, issued by {curl.issuer}"
                  if ok else curl.error or "TLS failed")
        steps.append(Step("tls", f"TLS handshake with {target}", source, t0 + connect,
                          max(tls_done - connect, 0.0), ok, detail,
                          ["curl -v: SSL connection, subject, issuer, verify result"], peer=target))
        if not ok:
            return steps
        sent_at = tls_done
    first_byte = curl.ms("time_starttransfer")
    status = curl.status
    steps.append(Step("request", f"request to {target}, waiting for the answer", source,
                      t0 + sent_at, max(first_byte - sent_at, 0.0), bool(status) and status < 500,
                      f"HTTP {status}" if status else curl.error, [f"curl time_starttransfer {first_byte:.1f} ms"],
                      peer=target))
    if status:
        steps.extend(_server_steps(client, lab, trace_id, target, curl, steps[-1]))
        steps.append(Step("transfer", f"response from {target} to the client", source,
                          t0 + first_byte, max(curl.ms("time_total") - first_byte, 0.0), status < 500,
                          f"{status}, {int(curl.timings.get('size_download') or 0)} bytes", ["curl size_download"],
                          peer=target))
    return steps


def _centred(parent: Step, duration: float) -> float:
    return parent.start_ms + max(parent.duration_ms - duration, 0.0) / 2


def _server_steps(client, lab: Lab, trace_id: str, target: str, curl: CurlResult, request: Step) -> list[Step]:
    timing = server_timing(curl.headers.get("server-timing", ""))
    served_by = curl.headers.get("x-served-by", "")
    steps: list[Step] = []
    parent = request
    if lab.instance(target).kind == "load-balancer":
        lb = _lb_step(client, lab, trace_id, target, curl, timing, parent)
        steps.append(lb)
        parent = lb
    if served_by:
        app_ms = timing.get("app", 0.0)
        app_log = find_log_line(log_text(client, lab.name, served_by), trace_id)
        app = Step("app", f"{served_by} handles the request", served_by, _centred(parent, app_ms), app_ms,
                   curl.status < 500, f"answered {curl.status}" + _error_text(curl),
                   [f"X-Served-By: {served_by}", f"Server-Timing app;dur={app_ms}",
                    f"its own log line for this trace: {json.dumps(app_log) if app_log else 'not found'}"],
                   peer=_database_of(lab, served_by))
        steps.append(app)
        database = _database_of(lab, served_by)
        if database:
            db_ms = timing.get("db", 0.0)
            ok = curl.status != 503
            steps.append(Step("db", f"{database} answers {served_by}'s queries", database, _centred(app, db_ms), db_ms,
                              ok, f"{db_ms:.1f} ms of SQL" if ok else "did not answer: the app gave up (503)",
                              [f"Server-Timing db;dur={db_ms} (SQLAlchemy events in {served_by})"]))
    return steps


def _lb_step(client, lab: Lab, trace_id: str, lb: str, curl: CurlResult, timing: dict, parent: Step) -> Step:
    line = find_log_line(log_text(client, lab.name, lb), trace_id) or {}
    attempts = upstream_attempts(line) if line else []
    duration = timing.get("lb", float(line.get("request_time", 0) or 0) * 1000)
    if len(attempts) > 1:
        tried = ", then ".join(f"{_name_of(lab, address)} ({status or 'no answer'})" for address, status in attempts)
        detail = f"retried: {tried}"
    elif attempts:
        detail = f"chose {_name_of(lab, attempts[0][0])} ({attempts[0][0]})"
    else:
        detail = f"upstream {curl.headers.get('x-upstream-addr', 'unknown')}"
    ok = bool(curl.status) and curl.status < 500
    children = [Step("lb", f"{lb} tries {_name_of(lab, address)}", lb, parent.start_ms, 0.0,
                     status.startswith(("2", "3", "4")), f"upstream status {status or 'none'}",
                     peer=_name_of(lab, address)) for address, status in attempts] if len(attempts) > 1 else []
    evidence = [f"X-Upstream-Addr: {curl.headers.get('x-upstream-addr', '')}",
                f"its access log line for this trace: {json.dumps(line) if line else 'not found'}"]
    final = _name_of(lab, attempts[-1][0]) if attempts else None
    return Step("lb", f"{lb} picks an app server", lb, _centred(parent, duration), duration, ok, detail,
                evidence, peer=final, children=children)


def _database_of(lab: Lab, instance: str) -> str | None:
    try:
        node = lab.spec.nodes[lab.instance(instance).node]
    except KeyError:
        return None
    database = getattr(node, "database", None)
    return lab.instances_of(database)[0].name if database and lab.instances_of(database) else None


def _error_text(curl: CurlResult) -> str:
    if curl.status and curl.status >= 400 and curl.body.strip().startswith("{"):
        return f": {curl.body.strip()[:160]}"
    return ""


def summary_of(trace: Trace) -> str:
    failed = sorted((step for step in trace.steps if not step.ok), key=lambda s: ORIGIN_ORDER.index(s.kind))
    if failed:
        status = f"HTTP {trace.status}; " if trace.status else ""
        return f"{status}stopped at {failed[0].kind} on {failed[0].node}: {failed[0].detail}"
    app, lb, dns = trace.step("app"), trace.step("lb"), trace.step("dns")
    cached = " (DNS from cache)" if dns and "cache" in dns.detail else ""
    via = f" via {lb.node}" if lb else ""
    return f"{trace.status} from {app.node if app else 'the server'}{via} in {trace.total_ms:.1f} ms{cached}"
