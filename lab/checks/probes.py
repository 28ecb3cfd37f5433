"""How each kind of check is probed and judged: the command to run and how to read its output.

Pure: given the lab and a check, say which node runs what; given the output,
say whether it passed and describe what was expected and what was seen.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

from lab.errors import LabError
from lab.topology import Lab
from lab.topology.autonomy import expected_as_path, route_prefix
from lab.topology.model import Check

HTTP_MARK = "\n--lab-status--"


@dataclass(frozen=True)
class Probe:
    node: str
    command: list[str]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    expected: str
    seen: str


class NoSourceNode(LabError):
    """A check names no `from:` and the lab has no client to run it from."""


def source_node(lab: Lab, check: Check) -> str:
    """The check's `from:`, else the lab's default client (Lab.default_client, the one rule)."""
    source = check.from_ or lab.default_client()
    if source is None:
        raise NoSourceNode(f"check '{check.name}' names no `from:` and lab '{lab.name}' has no client "
                           "node to run it from: add `from: NODE` to the check")
    return source


def _address(lab: Lab, node: str, family: int | None = None) -> str:
    """A node's address: its first IPv6 one when the check asks for IPv6 (and it has one)."""
    instance = lab.instance(node)
    return str(instance.first_address6 if family == 6 and instance.first_address6 else instance.first_address)


def _family(check: Check) -> list[str]:
    return [f"-{check.family}"] if check.family else []


def expand_addresses(lab: Lab, text: str) -> str:
    """'{web}' stands for the address of node web, for labs (or checks) without DNS."""
    names = set(lab.instance_names())
    return re.sub(r"\{([a-z0-9-]+)\}", lambda m: _address(lab, m.group(1)) if m.group(1) in names else m.group(0), text)


def _expected_values(lab: Lab, expect, rtype: str = "A") -> set[str]:
    """Node names stand for all their instances' addresses; anything else is literal."""
    items = expect if isinstance(expect, list) else [expect]
    values: set[str] = set()
    for item in items:
        instances = lab.instances_of(str(item)) or ([lab.instance(str(item))] if str(item) in lab.instance_names() else [])
        values |= {str(a) for i in instances for a in (i.addresses6 if rtype == "AAAA" else i.addresses).values()} \
            if instances else {str(item)}
    return values


def probe_for(lab: Lab, check: Check) -> Probe:
    source = source_node(lab, check)
    if check.kind == "resolve":
        return Probe(source, ["dig", "+short", "+time=2", "+tries=2", check.resolve, check.type])
    if check.kind == "http":
        url = expand_addresses(lab, check.http)
        return Probe(source, ["curl", "-sS", *_family(check), "--max-time", "10", "-w", HTTP_MARK + "%{http_code}", url])
    if check.kind == "flow":
        target, _, port = check.flow.rpartition(":")
        if check.proto == "udp":  # UDP has no handshake: a DNS query is the only honest probe
            return Probe(source, ["dig", f"@{_address(lab, target, check.family)}", "-p", port, "+time=2",
                                  "+tries=1", ".", "SOA"])
        return Probe(source, ["nc", "-z", *_family(check), "-w", "3", _address(lab, target, check.family), port])
    if check.kind == "reach":
        return Probe(source, ["ping", *_family(check), "-c", "1", "-W", "2", _address(lab, check.reach, check.family)])
    if check.kind == "route":
        prefix = route_prefix(lab, check.route, check.family)
        return Probe(source, ["vtysh", "-c", f"show bgp ipv{prefix.version} unicast {prefix} json"])
    database = lab.spec.nodes[lab.instance(check.on).node].database
    return Probe(check.on, ["runuser", "-u", "postgres", "--", "psql", "-d", database, "-tA", "-c", check.sql])


def judge(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    return {"resolve": _judge_resolve, "http": _judge_http, "flow": _judge_flow,
            "reach": _judge_reach, "sql": _judge_sql, "route": _judge_route}[check.kind](lab, check, code, output)


def _judge_resolve(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith(";")]
    if check.type in ("A", "AAAA"):
        lines = [line for line in lines if _is_ip(line)]
    seen = ", ".join(sorted(lines)) or "no answer"
    if check.expect is None:
        return Verdict(code == 0 and bool(lines), f"{check.resolve} {check.type} answered", seen)
    wanted = _expected_values(lab, check.expect, check.type)
    return Verdict(code == 0 and set(lines) == wanted, ", ".join(sorted(wanted)), seen)


def _curl_failure(text: str, code: int) -> str:
    """curl's own error line ("curl: (7) Failed to connect ..."), else its exit code."""
    errors = [line.strip() for line in text.splitlines() if line.strip().startswith("curl:")]
    return errors[-1] if errors else f"curl exit {code}"


def _judge_http(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    body, marked, status = output.rpartition(HTTP_MARK)
    if not marked:   # curl never wrote its status line
        body, status = output, ""
    status = status.strip()
    wanted = str(check.expect or 200)
    expected = f"status {wanted}" + (f" and a page containing '{check.contains}'" if check.contains else "")
    if code != 0 or not status.isdigit() or status == "000":   # curl writes 000 when no response came
        return Verdict(False, expected, f"no response ({_curl_failure(body, code)})")
    passed = status == wanted and (check.contains is None or check.contains in body)
    found = "" if check.contains is None else (" with" if check.contains in body else " without") + f" '{check.contains}'"
    return Verdict(passed, expected, f"status {status}{found}")


def _judge_flow(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    wanted = str(check.expect or "allowed")
    seen = "allowed (connected)" if code == 0 else "blocked (no connection)"
    return Verdict(seen.startswith(wanted), f"{check.flow}/{check.proto} {wanted}", seen)


def _judge_reach(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    return Verdict(code == 0, f"{check.reach} answers ping", "answered" if code == 0 else "no answer")


def _judge_route(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    """The router's BGP best path toward the prefix, read from FRR's JSON answer."""
    wanted = expected_as_path(lab, check.expect) if check.expect is not None else None
    family = " (IPv6)" if check.family == 6 else ""
    expected = f"a BGP route to {check.route}{family}" + (f" via AS path {_as_text(wanted)}" if wanted is not None else "")
    try:
        answer = json.loads(output[output.find("{"):]) if code == 0 and "{" in output else None
    except json.JSONDecodeError:
        answer = None
    if answer is None:
        return Verdict(False, expected, output.strip().splitlines()[-1] if output.strip() else f"exit {code}")
    best = next((p for p in answer.get("paths", []) if p.get("bestpath", {}).get("overall")), None)
    if best is None:
        return Verdict(False, expected, "no BGP route")
    seen_path = tuple(a for segment in best.get("aspath", {}).get("segments", []) for a in segment.get("list", []))
    seen = f"AS path {_as_text(seen_path)} (best of {len(answer.get('paths', []))})"
    return Verdict(wanted is None or seen_path == wanted, expected, seen)


def _as_text(path: tuple[int, ...]) -> str:
    return " ".join(map(str, path)) or "(its own AS)"


def _judge_sql(lab: Lab, check: Check, code: int, output: str) -> Verdict:
    if code != 0:
        return Verdict(False, "the query to succeed", output.strip().splitlines()[-1] if output.strip() else f"exit {code}")
    first = output.strip().splitlines()[0] if output.strip() else ""
    if check.expect is not None:
        return Verdict(first == str(check.expect), f"first value {check.expect}", f"first value {first or '(no rows)'}")
    if check.contains is not None:
        return Verdict(check.contains in output, f"rows containing '{check.contains}'", first or "(no rows)")
    return Verdict(bool(first), "at least one row", first or "(no rows)")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
