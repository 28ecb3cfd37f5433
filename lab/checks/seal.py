"""`lab check --seal`: proves from every node that the lab is sealed (see lab/plan/seal.py).

From each node, one probe (a short Python script in the node) asks the kernel for
its route to an address outside the lab (`ip route get`, which sends nothing),
tries the engine's gateway address of every lab network on a few TCP ports and
UDP 53, and sends one DNS query to the engine's DNS (127.0.0.11). Probes go only
to the gateway addresses and 127.0.0.11, never outside. Resolvers must know only
the lab's root servers. Judging is pure: recorded output in, verdicts out.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address

from lab.backends.protocol import Backend
from lab.checks.run import CheckResult
from lab.kinds import registry
from lab.kinds.registry import RECURSIVE_RESOLVER, ROOT_SERVER
from lab.errors import LabError
from lab.interrupts import map_settled
from lab.plan.seal import EMBEDDED_DNS
from lab.topology import Lab

ROOT_HINTS = "/lab/etc/root.hints"       # the resolver's starting points, rendered by the planner
OUTSIDE = "192.0.2.1"                    # TEST-NET-1: only asked about, never sent to
GATEWAY_TCP_PORTS = (22, 53, 80, 443, 2375, 8080)
ANSWERED = ("open", "refused", "answered")   # the host replied (a RST or an ICMP error is a reply)

# argv: OUTSIDE, ENGINE_DNS, then gateway addresses; prints one JSON object.
PROBE_SCRIPT = r"""
import json, socket, subprocess, sys, threading
outside, engine_dns, gateways = sys.argv[1], sys.argv[2], sys.argv[3:]
PORTS = %s
QUERY = bytes.fromhex("1a2b01000001000000000000" "0000020001")   # ". NS?"
result = {"route": "", "gateways": {}, "engine_dns": ""}
route = subprocess.run(["ip", "route", "get", outside], capture_output=True, text=True)
result["route"] = (route.stdout + route.stderr).strip()
def fam(address): return socket.AF_INET6 if ":" in address else socket.AF_INET
def tcp(address, port, into):
    s = socket.socket(fam(address)); s.settimeout(0.7)
    try:
        s.connect((address, port)); into["tcp/%%d" %% port] = "open"
    except ConnectionRefusedError: into["tcp/%%d" %% port] = "refused"
    except socket.timeout: into["tcp/%%d" %% port] = "silent"
    except OSError as e: into["tcp/%%d" %% port] = "blocked: %%s" %% e.strerror
    finally: s.close()
def udp(address, into, key):
    s = socket.socket(fam(address), socket.SOCK_DGRAM); s.settimeout(0.7)
    try:
        s.connect((address, 53)); s.send(QUERY); s.recv(512); into[key] = "answered"
    except ConnectionRefusedError: into[key] = "refused"
    except socket.timeout: into[key] = "silent"
    except OSError as e: into[key] = "blocked: %%s" %% e.strerror
    finally: s.close()
threads = []
for gw in gateways:
    seen = result["gateways"].setdefault(gw, {})
    threads += [threading.Thread(target=tcp, args=(gw, p, seen)) for p in PORTS]
    threads.append(threading.Thread(target=udp, args=(gw, seen, "udp/53")))
dns = {}
threads.append(threading.Thread(target=udp, args=(engine_dns, dns, "dns")))
for t in threads: t.start()
for t in threads: t.join()
result["engine_dns"] = dns["dns"]
print(json.dumps(result))
""" % (list(GATEWAY_TCP_PORTS),)


def _lab_addresses(lab: Lab) -> dict[str, str]:
    return {str(address): instance.name for instance in lab.instances for address in instance.all_addresses()}


def judge_route(lab: Lab, node: str, route: str) -> CheckResult:
    """No route off the lab: none at all, or a next hop that is a lab node."""
    expected = "no route out"
    words = route.split()
    if "unreachable" in route.lower() and "via" not in words:
        return CheckResult("seal-route", "seal", node, True, expected, "none", 0.0)
    via = words[words.index("via") + 1] if "via" in words else None
    owner = _lab_addresses(lab).get(via or "")
    if owner is not None:
        return CheckResult("seal-route", "seal", node, True, expected, f"via {via} ({owner})", 0.0)
    seen = f"via {via}, which is no lab node" if via else f"on-link: {route[:60]}"
    if via in {str(g) for g in [*lab.gateways.values(), *lab.gateways6.values()]}:
        seen = f"via {via}, the engine's gateway"
    return CheckResult("seal-route", "seal", node, False, expected, seen, 0.0)


def judge_gateways(node: str, seen: dict[str, dict[str, str]]) -> CheckResult:
    expected = "gateways silent"
    answered = [f"{gw} {probe} {what}" for gw, probes in sorted(seen.items())
                for probe, what in sorted(probes.items()) if what in ANSWERED]
    tried = sum(len(probes) for probes in seen.values())
    if answered:
        return CheckResult("seal-gateway", "seal", node, False, expected,
                           f"{len(answered)} answered: " + "; ".join(answered[:3]), 0.0)
    return CheckResult("seal-gateway", "seal", node, True, expected, f"{tried} probes unanswered", 0.0)


def judge_engine_dns(node: str, what: str) -> CheckResult:
    return CheckResult("seal-engine-dns", "seal", node, what != "answered",
                       f"{EMBEDDED_DNS} silent", what.split(":")[0], 0.0)


def judge_root_hints(lab: Lab, node: str, hints: str) -> CheckResult:
    """A resolver starts only from the lab's root servers."""
    roots = {str(a) for i in lab.instances if registry.is_a(i.kind, ROOT_SERVER) for a in i.addresses.values()}
    listed = {line.split()[-1] for line in hints.splitlines()
              if not line.startswith(";") and len(line.split()) >= 4 and line.split()[-2] == "A"}
    strangers = sorted(listed - roots)
    passed = bool(listed) and not strangers
    seen = f"roots {', '.join(sorted(listed)) or 'none'}" + (f" (not lab roots: {', '.join(strangers)})" if strangers else "")
    return CheckResult("seal-resolver-roots", "seal", node, passed, "lab roots only", seen, 0.0)


def _probe_node(backend: Backend, lab: Lab, node: str) -> list[CheckResult]:
    # IPv4 gateways, then (dual-stack labs) the IPv6 ones: the host answers on both
    gateways = [*sorted((str(g) for g in lab.gateways.values()), key=IPv4Address),
                *sorted(str(g) for g in lab.gateways6.values())]
    try:
        output = backend.exec(lab.name, node, ["python3", "-c", PROBE_SCRIPT, OUTSIDE, EMBEDDED_DNS,
                                               *gateways]).output
        report = json.loads(output.strip().splitlines()[-1])
    except (LabError, ValueError, IndexError) as error:
        return [CheckResult("seal-probe", "seal", node, False, "the seal probe to run", str(error)[:120], 0.0)]
    results = [judge_route(lab, node, report["route"]), judge_gateways(node, report["gateways"]),
               judge_engine_dns(node, report["engine_dns"])]
    if registry.is_a(lab.instance(node).kind, RECURSIVE_RESOLVER):
        try:
            hints = backend.read_file(lab.name, node, ROOT_HINTS)
        except LabError:
            hints = ""   # judged as no roots listed: the check fails and says so
        results.append(judge_root_hints(lab, node, hints))
    return results


def run_seal_check(backend: Backend, lab: Lab, workers: int = 4) -> list[CheckResult]:
    per_node = map_settled(lambda name: _probe_node(backend, lab, name), lab.instance_names(), workers)
    return [result for results in per_node for result in results]
