"""Turning evidence into the steps of a trace: who did what, when, and how we know.

Client-side steps (dns, tcp, tls, request, transfer) are placed on curl's own
clock (its timings, or its timestamped verbose lines where curl reports 0 after
an error), so they tile its measured total. Server-side steps (lb, app, db) carry
the time each server measured itself, drawn centred inside the step that
contains them (their exact start is not observable from outside), and never
longer than it. Which step failed, and why, comes from lab.trace.outcome.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

from lab.firewall.path import FlowPath
from lab.topology import Instance, Lab
from lab.trace.dns import DnsTrace
from lab.trace.model import DERIVED, FIREWALL_STEP, OBSERVED, SERVER_STEP, SERVER_TIMING, Step, Trace
from lab.trace.outcome import Evidence, Outcome, attempt_failure
from lab.trace.web import family_of, server_timing
from lab.trace.wire import endpoint

PAST = {"allow": "allowed", "deny": "dropped", "reject": "rejected"}


def _family_note(evidence: Evidence) -> str:
    """Which family the connection used and who chose it (observed: curl's Connected line)."""
    family = family_of(evidence.curl.connected_to)
    if family is None:
        return ""
    if evidence.family_asked:
        return f" over {family} (asked with -{evidence.family_asked})"
    return f" over {family} (no -4/-6 given: curl chose it)"


def _family_evidence(evidence: Evidence) -> list[str]:
    address = evidence.curl.connected_to
    return [f"curl's verbose line: Connected to {evidence.host} ({address})"] if address else []


def owner_of(lab: Lab, address: str) -> Instance | None:
    wanted = ip_address(address)
    return next((i for i in lab.instances if wanted in i.all_addresses()), None)


def _inside(parent: Step, child: Step) -> Step:
    """Clamp a child into its parent's span (server clocks and ours differ by a little)."""
    child.duration_ms = round(min(child.duration_ms, parent.duration_ms), 3)
    latest = parent.start_ms + parent.duration_ms - child.duration_ms
    child.start_ms = round(min(max(child.start_ms, parent.start_ms), latest), 3)
    return child


def _centred(parent: Step, step: Step) -> Step:
    step.duration_ms = min(step.duration_ms, parent.duration_ms)
    step.start_ms = parent.start_ms + (parent.duration_ms - step.duration_ms) / 2
    return _inside(parent, step)


def dns_step(dns: DnsTrace, client_ms: float, outcome: Outcome) -> Step:
    failed = outcome.step == "dns"
    addresses = ", ".join(record.split()[-1] for record in dns.answer) or "no address"
    detail = outcome.reason if failed else f"{dns.name} is {addresses}" + \
        (" (from the resolver's cache)" if dns.from_cache else "")
    evidence = [f"the client waited {client_ms:.1f} ms for its stub resolver (curl time_namelookup; after a "
                "failed lookup, from its first query to the last reply, in the resolver's packets)",
                f"{dns.resolver} ({dns.resolver_address}) answered the client's query "
                + (f"in {dns.resolver_ms:.1f} ms" if dns.resolver_ms is not None else "never")
                + f" and sent {len(dns.steps)} queries upstream (its own packets, tcpdump in its container)"]
    if dns.stub is not None:
        return _stub_dns_step(dns, client_ms, failed, detail, evidence, outcome)
    parent = Step("dns", f"DNS lookup of {dns.name} by {dns.resolver}", dns.resolver, 0.0, round(client_ms, 3),
                  not failed, detail, evidence, peer=dns.client)
    _add_resolver_steps(parent, dns, client_ms)
    return parent


def _stub_dns_step(dns: DnsTrace, client_ms: float, failed: bool, detail: str, evidence: list[str],
                   outcome: Outcome) -> Step:
    """The client's own DNS cache first: it answered itself, or forwarded to the resolver."""
    stub = dns.stub
    said = "; ".join(stub["lines"]) or "no line about this name"
    if dns.from_os_cache:
        detail = outcome.reason if failed else \
            f"{dns.name} is {', '.join(stub['answer'])} (from {dns.client}'s DNS cache: nothing left the node)"
        notes = [evidence[0], f"{dns.client}'s dnsmasq log for this lookup: {said}",
                 (f"{dns.resolver} saw no query for {dns.name} (its own packets, tcpdump in its container)"
                  if dns.resolver_ms is None else
                  f"{dns.resolver} answered a query for {dns.name} all the same (another program's?)")]
        return Step("dns", f"DNS lookup of {dns.name} by {dns.client}'s DNS cache", dns.client, 0.0,
                    round(client_ms, 3), not failed, detail, notes)
    parent = Step("dns", f"DNS lookup of {dns.name}: {dns.client}'s cache asks {dns.resolver}", dns.resolver, 0.0,
                  round(client_ms, 3), not failed, detail,
                  [*evidence, f"{dns.client}'s dnsmasq log for this lookup: {said}"], peer=dns.client)
    _add_resolver_steps(parent, dns, client_ms)
    return parent


def _add_resolver_steps(parent: Step, dns: DnsTrace, client_ms: float) -> None:
    # The client's query took about half of what the resolver did not account for to reach it.
    offset = max(client_ms - (dns.resolver_ms or 0.0), 0.0) / 2
    at = offset
    for asked in dns.steps:
        duration = asked.duration_ms or 0.0
        start = offset + asked.after_ms if asked.after_ms is not None else at
        said = {"referral": f"referral to {asked.zone} (NS {', '.join(asked.ns)}; glue {', '.join(asked.glue)})",
                "answer": f"answer {', '.join(asked.answer)}"}.get(asked.outcome, asked.outcome.upper())
        parent.children.append(_inside(parent, Step(
            "dns", f"{dns.resolver} asks {asked.server}: {asked.query}", asked.server, start, duration,
            ok=asked.outcome in ("answer", "referral", "nodata"), detail=f"{asked.query}? {said}", peer=dns.resolver,
            evidence=[f"query to {asked.address}:53 and its reply, captured on {dns.resolver}"])))
        at = start + duration


def path_step(evidence: Evidence, path: FlowPath | None, start: float, duration: float) -> Step | None:
    """The routers crossed: observed when every hop's own capture saw this connection's SYN."""
    views = evidence.hops
    if path is not None:
        names = [hop.instance.name for hop in path.hops]
        by_name = {view.node: view for view in views}
        views = [by_name[name] for name in names if name in by_name]
        observed = len(views) == len(names) and all(view.seen for view in views)
    else:   # an address no node has: only the wire can tell the way
        names = [view.node for view in views]
        observed = bool(views)
    if path is None and not views:
        return None
    target = path.target.name if path else (evidence.address or evidence.host)
    route = " → ".join([evidence.client, *names, target])
    notes = [note for hop in path.hops for note in hop.notes] + list(path.notes) if path else []
    how = ["each router's own capture (tcpdump in its container) saw this connection's SYN, matched by its "
           "sequence number"] if observed else \
        ["computed from the lab's routes (lab/topology/routes.py), the same ones the nodes run", *notes]
    step = Step("path", f"packets cross {len(names)} routers", evidence.client, start, duration, True, route, how,
                peer=target, source=OBSERVED if observed else DERIVED)
    if observed:
        step.children = [_inside(step, _hop_step(view, evidence, start)) for view in views]
        step.ok = all(child.ok for child in step.children)
    return step


def _hop_step(view, evidence: Evidence, fallback: float) -> Step:
    at = evidence.on_curl_clock(view.syn_in.time) if evidence.syn_at is not None else fallback
    spent = (view.syn_out.time - view.syn_in.time) * 1000 if view.syn_out else 0.0
    arrived = f"SYN in on {view.syn_in.interface} from {endpoint(view.syn_in.src, view.syn_in.sport)}"
    if view.syn_out:
        went = f"out on {view.syn_out.interface} to {endpoint(view.syn_out.dst, view.syn_out.dport)}"
        nat = view.nat()
        back = "; the SYN-ACK came back through here" if view.answered else "; no SYN-ACK came back"
        detail = f"{arrived}, {went}{f' ({nat})' if nat else ''}{back}"
    elif view.refused:
        detail = f"{arrived}; refused here: a RST went back"
    else:
        detail = f"{arrived}; it went no further: dropped here"
    return Step("path", f"{view.node} forwards", view.node, at, spent, view.syn_out is not None, detail,
                [f"tcpdump on {view.node}: this connection's SYN (matched by its sequence number) and replies"])


def firewall_steps(evidence: Evidence, outcome: Outcome, start: float, duration: float) -> list[Step]:
    steps = []
    for decision in evidence.firewalls:
        stopped = outcome.step == FIREWALL_STEP and outcome.node == decision.firewall
        mismatch = decision.confirmed is False
        detail = (f"rule '{decision.rule}' {PAST.get(decision.action, decision.action)} "
                  f"tcp/{evidence.port}")
        if mismatch:
            detail += " (computed; its counter did not rise)"
        steps.append(Step(FIREWALL_STEP, f"firewall {decision.firewall} decides", decision.firewall, start, duration,
                          decision.action == "allow" and not stopped and not mismatch,
                          outcome.reason if stopped else detail,
                          [f"counter of rule '{decision.rule}' rose by {decision.rose} packet(s) "
                           "(iptables-save -c, read before and after the request)"],
                          source=OBSERVED if decision.confirmed else DERIVED))
    return steps


def _tls_step(evidence: Evidence, outcome: Outcome, start: float, end: float) -> Step:
    curl, target = evidence.curl, evidence.target or evidence.address
    failed = outcome.step == "tls"
    if failed:
        detail = outcome.reason
    else:
        matched = f" matches {curl.matched}" if curl.matched else ""
        detail = (f"{curl.tls_version}, {curl.cipher}; certificate for {evidence.host}{matched} "
                  f"(subject {curl.subject}), issued by {curl.issuer}, verified")
    evidence_lines = ["curl -v: SSL connection, certificate subject, subjectAltName match, issuer, verify result"]
    names = evidence.certificate_names or curl.certificate_names
    if names:
        evidence_lines.append(f"names in the certificate: {', '.join(names)}")
    step = Step("tls", f"TLS handshake with {target}", evidence.client, start, end - start, not failed, detail,
                evidence_lines, peer=target)
    wire, at = evidence.tls_wire, evidence.on_curl_clock
    if wire is not None and evidence.syn_at is not None:
        step.children = [_inside(step, child) for child in (
            Step("tls", f"{evidence.client} prepares its ClientHello", evidence.client, start,
                 max(at(wire.hello_at) - start, 0.0), True,
                 f"{max(at(wire.hello_at) - start, 0.0):.1f} ms from the connection to the ClientHello leaving",
                 ["curl's connect time; tcpdump on the client: the ClientHello leaving"]),
            Step("tls", f"{target} answers the ClientHello", target, at(wire.hello_at), wire.server_ms, True,
                 f"ServerHello to Finished arrived {wire.server_ms:.1f} ms after the ClientHello left",
                 ["tcpdump on the client: the ClientHello leaving, the server's flight arriving"],
                 peer=evidence.client),
            Step("tls", f"{evidence.client} checks the certificate", evidence.client, at(wire.flight_at),
                 wire.client_work_ms, not failed,
                 f"{wire.client_work_ms:.1f} ms of the client's own work (its CA bundle, verification) "
                 "before its Finished left" if not failed else outcome.reason,
                 ["tcpdump on the client: the server's flight arriving, the client's next packet leaving"]))]
    return step


def client_steps(evidence: Evidence, outcome: Outcome, path: FlowPath | None) -> list[Step]:
    """tcp, tls, request and transfer on curl's clock, with the path and firewalls beside tcp."""
    curl, target = evidence.curl, evidence.target or evidence.address
    looked, connected, end = curl.lookup_ms, curl.connected_ms, curl.total_ms
    connect_end = connected if connected is not None else end
    route = path_step(evidence, path, looked, connect_end - looked)
    steps = [route] if route else []
    steps += firewall_steps(evidence, outcome, looked, connect_end - looked)
    tcp_failed = outcome.step in ("tcp", FIREWALL_STEP)
    steps.append(Step("tcp", f"TCP connection to {target}", evidence.client, looked, connect_end - looked,
                      not tcp_failed, outcome.reason if tcp_failed else
                      f"connected to {endpoint(curl.timings.get('remote_ip'), curl.timings.get('remote_port'))}"
                      + _family_note(evidence),
                      [f"curl: {curl.error}" if tcp_failed else "curl time_connect"] + _family_evidence(evidence),
                      peer=target))
    if connected is None:
        return steps
    sent_at = connected
    if evidence.https:
        tls_end = curl.tls_done_ms if outcome.step != "tls" and curl.tls_done_ms else end
        steps.append(_tls_step(evidence, outcome, connected, tls_end))
        if outcome.step == "tls":
            return steps
        sent_at = tls_end
    status = curl.status
    first_byte = curl.ms("time_starttransfer") or end
    method = evidence.curl.timings.get("method") or "GET"
    steps.append(Step("request", f"{method} to {target}, waiting for the answer", evidence.client, sent_at,
                      first_byte - sent_at, bool(status) and status < 400,
                      f"HTTP {status}" if status else outcome.reason,
                      [f"curl time_starttransfer {first_byte:.1f} ms"], peer=target))
    if status:
        request = steps[-1]
        steps.extend(server_steps(evidence, outcome, request))
        steps.append(Step("transfer", f"response from {target} to the client", evidence.client, first_byte,
                          end - first_byte, status < 400,
                          f"{status}, {int(curl.timings.get('size_download') or 0)} bytes", ["curl size_download"],
                          peer=target))
    return steps


def server_steps(evidence: Evidence, outcome: Outcome, request: Step) -> list[Step]:
    curl = evidence.curl
    timing = server_timing(curl.headers.get("server-timing", ""))
    steps: list[Step] = []
    parent = request
    if evidence.lb:
        lb = _lb_step(evidence, outcome, timing, parent)
        steps.append(lb)
        # after retries, the app that answered did so within the last attempt
        parent = lb.children[-1] if lb.children and lb.children[-1].ok else lb
    if evidence.app:
        steps.extend(_app_steps(evidence, outcome, timing, parent))
    return steps


def _app_steps(evidence: Evidence, outcome: Outcome, timing: dict, parent: Step) -> list[Step]:
    line = evidence.app_line or {}
    app_ms = float(line.get("app_ms") or timing.get(SERVER_TIMING, 0.0))
    status = line.get("status") or evidence.curl.status
    failed = outcome.step == SERVER_STEP
    app = _centred(parent, Step(
        SERVER_STEP, f"{evidence.app} handles the request", evidence.app, 0.0, app_ms, not failed and outcome.step != "db",
        outcome.reason if failed else f"answered {status}",
        [f"X-Served-By: {evidence.curl.headers.get('x-served-by', '')}",
         f"its own log line for this trace: {line if line else 'not found'}"],
        peer=evidence.database if _ran_sql(line, timing) else None,
        source=OBSERVED if line else DERIVED))
    if not (evidence.database and _ran_sql(line, timing)):
        return [app]
    db_ms = float(line.get("db_ms") or timing.get("db", 0.0))
    queries = line.get("db_queries")
    db_failed = outcome.step == "db"
    detail = outcome.reason if db_failed else \
        f"{queries if queries is not None else 'its'} statement(s), {db_ms:.1f} ms of SQL"
    notes = [f"{evidence.app}'s own log line for this trace: db_queries={queries}, db_ms={db_ms}, "
             f"db_error={line.get('db_error')}"]
    if db_failed and not db_ms:
        # No statement ran: the app spent its time waiting for the database, then gave up.
        db_ms = app.duration_ms
        notes.append("no statement ran: the time shown is the app's, spent waiting for the database")
    db = Step("db", f"{evidence.database} answers {evidence.app}'s queries", evidence.database, 0.0, db_ms,
              not db_failed, detail, notes)
    return [app, _centred(app, db)]


def _ran_sql(line: dict, timing: dict) -> bool:
    """Did SQL run for this request, by the app's own record (older apps: its Server-Timing)?"""
    if "db_queries" in line:
        return bool(line["db_queries"]) or bool(line.get("db_error"))
    return timing.get("db", 0.0) > 0


def _lb_step(evidence: Evidence, outcome: Outcome, timing: dict, parent: Step) -> Step:
    line, attempts, names = evidence.lb_line or {}, evidence.attempts, evidence.names

    def name(address: str) -> str:
        return names.get(address.rsplit(":", 1)[0], address)

    duration = float(line.get("request_time") or 0) * 1000 or timing.get("lb", 0.0)
    failed = outcome.step == "lb"
    if failed:
        detail = outcome.reason
    elif len(attempts) > 1:
        detail = "retried: " + ", then ".join(f"{name(a.address)} ({attempt_failure(a)})" for a in attempts)
    elif attempts:
        detail = f"chose {name(attempts[0].address)} ({attempts[0].address})"
    elif line and not evidence.app:
        detail = f"answered {line.get('status', evidence.curl.status)} itself (no app server asked)"
    else:
        detail = f"upstream {evidence.curl.headers.get('x-upstream-addr', 'unknown')}"
    lb = _centred(parent, Step("lb", f"{evidence.lb} picks an app server", evidence.lb, 0.0, duration, not failed,
                               detail, [f"X-Upstream-Addr: {evidence.curl.headers.get('x-upstream-addr', '')}",
                                        f"its access log line for this trace: {line if line else 'not found'}"],
                               peer=name(attempts[-1].address) if attempts else evidence.app,
                               source=OBSERVED if line else DERIVED))
    if len(attempts) > 1 or failed:
        at = lb.start_ms
        for attempt in attempts:
            spent = attempt.response_ms or 0.0
            lb.children.append(_inside(lb, Step(
                "lb", f"{evidence.lb} tries {name(attempt.address)}", evidence.lb, at, spent,
                attempt.status.startswith(("2", "3", "4")), f"{name(attempt.address)}: {attempt_failure(attempt)}",
                [f"upstream_status {attempt.status}, upstream_connect_time {attempt.connect_ms}, "
                 f"upstream_response_time {attempt.response_ms} (ms)"], peer=name(attempt.address))))
            at += spent
    return lb


def summary_of(trace: Trace) -> str:
    outcome = trace.outcome
    if not outcome:
        return ""
    if not outcome["ok"]:
        status = f"HTTP {trace.status}; " if trace.status else ""
        return f"{status}stopped at {outcome['step']} on {outcome['node']}: {outcome['reason']}"
    app, lb, dns = trace.step(SERVER_STEP), trace.step("lb"), trace.step("dns")
    cached = " (DNS from cache)" if dns and "cache" in dns.detail else ""
    via = f" via {lb.node}" if lb and app else ""
    server = app.node if app else outcome["node"] or "the server"
    moved = f", redirect to {outcome['location']}" if outcome.get("location") else ""
    return f"{trace.status} from {server}{via} in {trace.total_ms:.1f} ms{cached}{moved}"

