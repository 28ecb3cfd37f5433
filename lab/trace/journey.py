"""`lab trace URL`: run a real request from a client node and tell its journey from evidence.

The DNS step comes from the resolver's own packets (lab.trace.dns). The
request is a real curl in the client, with the address the lookup returned and
a W3C traceparent of ours; its timings, TLS details and response headers come
from curl itself. The path is computed from the lab's routes (lab.firewall.path)
and the firewalls' decisions are confirmed by the rule counters read before and
after the request. The lb's choice comes from its own JSON log line for our
trace id, and the app's and database's times from Server-Timing.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.firewall.explain import computed_verdicts, confirm
from lab.firewall.path import flow_path
from lab.runtime.firewall import read_counters
from lab.runtime.inspect import run_in_node_split
from lab.topology import Lab
from lab.trace.dns import trace_lookup
from lab.trace.model import Step, Trace
from lab.trace.steps import (dns_step, owner_of, path_step, request_steps, summary_of,
                             firewall_steps)
from lab.trace.web import curl_command, parse_curl


def default_client(lab: Lab) -> str:
    clients = [i.name for i in lab.instances if i.kind == "client"]
    if not clients:
        raise LabError("this lab has no client node to trace from: give --from NODE")
    return clients[0]


def trace_url(client, lab: Lab, url: str, source: str | None = None) -> Trace:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabError(f"'{url}' is not an http:// or https:// URL")
    source = source or default_client(lab)
    lab.instance(source)  # unknown node: KeyError -> reported by the CLI
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    trace_id = secrets.token_hex(16)
    trace = Trace(url=url, lab=lab.name, client=source, ok=False, total_ms=0.0, status=None, summary="",
                  trace_id=trace_id)
    address, dns_ms = _lookup(client, lab, source, host, trace)
    if address is None:
        return _finish(trace, dns_ms)
    target = owner_of(lab, address)
    path = flow_path(lab, lab.instance(source), target, "tcp", port) if target else None
    firewalls = [hop.instance.name for hop in path.hops if hop.kind == "firewall"] if path else []
    before = {fw: read_counters(client, lab.name, fw) for fw in firewalls}
    code, out, err = run_in_node_split(client, lab.name, source, curl_command(
        url, host, port, address, f"00-{trace_id}-{secrets.token_hex(8)}-01"))
    curl = parse_curl(code, out, err)
    after = {fw: read_counters(client, lab.name, fw) for fw in firewalls}
    verdicts = [confirm(v, before[v.firewall], after[v.firewall]) for v in computed_verdicts(lab, path)] if path else []
    trace.status = curl.status
    if path:
        trace.steps.append(path_step(lab, path, dns_ms, curl))
    trace.steps.extend(firewall_steps(verdicts, dns_ms, curl))
    trace.steps.extend(request_steps(client, lab, trace_id, source, target.name if target else address, curl,
                                     dns_ms, parts.scheme == "https"))
    return _finish(trace, dns_ms + curl.ms("time_total"))


def _lookup(client, lab: Lab, source: str, host: str, trace: Trace) -> tuple[str | None, float]:
    """The DNS step; the address to connect to, or None when the name did not resolve."""
    if _is_address(host):
        return host, 0.0
    started = time.monotonic()
    dns = trace_lookup(client, lab.name, source, host, "A")
    dns_ms = dns.duration_ms if dns.duration_ms is not None else (time.monotonic() - started) * 1000
    step = dns_step(dns, dns_ms)
    trace.steps.append(step)
    # answer records read "www.shop.test. A 198.18.10.10" (a CNAME chain comes first)
    addresses = [record.split()[-1] for record in dns.answer
                 if len(record.split()) >= 3 and record.split()[-2] == "A" and _is_address(record.split()[-1])]
    return (addresses[0] if step.ok and addresses else None), dns_ms


def _finish(trace: Trace, total_ms: float) -> Trace:
    trace.total_ms = round(total_ms, 2)
    trace.ok = bool(trace.steps) and all(step.ok for step in trace.steps)
    trace.summary = summary_of(trace)
    return trace


def _is_address(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


__all__ = ["trace_url", "default_client", "Step"]
