"""The firewall seen live, through the Backend: a node's rule counters, real probes, and
`explain`'s computed verdicts confirmed by them. Reading what the commands print is pure
(parse_counters, unit-tested with recorded iptables-save output)."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from lab.backends.protocol import Backend
from lab.errors import RuntimeFailure
from lab.firewall.explain import Counters, Verdict, computed_verdicts, confirm, expected_results, final_action
from lab.firewall.path import FlowPath, flow_path
from lab.topology import Lab

# Run inside the source node (every lab image has python3): one connection attempt,
# classified the way a person reads it. ICMP goes through ping (raw sockets).
PROBE_SCRIPT = r"""
import errno, json, socket, sys, time
host, port, proto, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
DNS_QUERY = bytes.fromhex("13370100000100000000000000000600010000")  # ". NS", so a resolver answers
start = time.monotonic()
family = socket.AF_INET6 if ":" in host else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
sock.settimeout(timeout)
try:
    sock.connect((host, port))
    if proto == "udp":
        sock.send(DNS_QUERY if port == 53 else b"lab probe\n")
        sock.recv(4096)
    result = "open"
except ConnectionRefusedError:
    result = "refused"
except socket.timeout:
    result = "timeout"
except OSError as error:
    result = "unreachable" if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error: %s" % error
print(json.dumps({"result": result, "seconds": round(time.monotonic() - start, 3)}))
"""


@dataclass
class ProbeResult:
    result: str          # open, refused, timeout, unreachable
    seconds: float


@dataclass
class Explanation:
    source: str
    target: str
    address: str
    proto: str
    port: int | None
    path: list[str]
    notes: list[str]
    verdicts: list[Verdict]
    expected: str                      # allow, deny, reject
    family: int = 4                    # 4: iptables decides; 6: ip6tables
    probe: ProbeResult | None = None
    consistent: bool | None = None     # the probe's result fits the verdict
    problems: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"family": self.family, "from": self.source, "to": self.target, "address": self.address,
                "proto": self.proto,
                "port": self.port, "path": self.path, "notes": self.notes, "expected": self.expected,
                "verdicts": [v.as_dict() for v in self.verdicts],
                "probe": None if self.probe is None else {"result": self.probe.result,
                                                          "seconds": self.probe.seconds},
                "consistent": self.consistent, "confirmed": self.confirmed, "problems": self.problems}


def _exec(backend: Backend, lab: str, node: str, command: list[str]) -> tuple[int, str]:
    result = backend.exec(lab, node, command)
    return result.code, result.output


def parse_counters(saved: str) -> Counters:
    """`iptables-save -c` output -> (chain, comment) -> (packets, bytes), summed over the lines
    of one rule (a rule about several addresses is several lines). LOG lines are left out:
    they count the same packets as the rule's action."""
    counters: Counters = {}
    for line in saved.splitlines():
        if not line.startswith("[") or " -A " not in line:
            continue
        numbers, _, rule = line.partition("] ")
        packets, _, size = numbers.lstrip("[").partition(":")
        words = shlex.split(rule)
        chain = words[1]
        comment = words[words.index("--comment") + 1] if "--comment" in words else None
        target = words[words.index("-j") + 1] if "-j" in words else None
        if comment is None or target == "LOG":
            continue
        old = counters.get((chain, comment), (0, 0))
        counters[(chain, comment)] = (old[0] + int(packets), old[1] + int(size))
    return counters


# Both families' rules in one exec (one engine round trip); the marker splits them. A node
# without IPv6 rules prints empty IPv6 tables.
SAVE_BOTH = ["sh", "-c", "iptables-save -c && echo '#lab-ipv6' && ip6tables-save -c"]
IPV6_MARK = "#lab-ipv6"


def read_counters_by_family(backend: Backend, lab: str, node: str) -> dict[int, Counters]:
    """{4: counters, 6: counters} of a node's rules, by family."""
    code, output = _exec(backend, lab, node, SAVE_BOTH)
    if code != 0:
        raise RuntimeFailure(f"cannot read the rules of node '{node}' (iptables-save -c: {output.strip()})")
    four, _, six = output.partition(IPV6_MARK)
    return {4: parse_counters(four), 6: parse_counters(six)}


def read_counters(backend: Backend, lab: str, node: str) -> Counters:
    """A node's rule counters, both families summed: one intent is one rule in each."""
    return sum_counters(read_counters_by_family(backend, lab, node).values())


def sum_counters(parts) -> Counters:
    total: Counters = {}
    for counters in parts:
        for key, (packets, size) in counters.items():
            old = total.get(key, (0, 0))
            total[key] = (old[0] + packets, old[1] + size)
    return total


def logging_status(backend: Backend, lab: str, node: str) -> str:
    code, output = _exec(backend, lab, node, ["cat", "/run/lab/firewall-logging"])
    return output.strip() if code == 0 else "unknown"


def probe(backend: Backend, lab: str, node: str, address: str, proto: str,
          port: int | None, timeout: float = 2.0) -> ProbeResult:
    """One real connection attempt from a node (tcp connect, a udp datagram, or a ping)."""
    if proto == "icmp":
        start = time.monotonic()
        code, output = _exec(backend, lab, node, ["ping", "-n", "-c", "1", "-W", str(int(max(timeout, 1))), address])
        seconds = round(time.monotonic() - start, 3)
        if code == 0:
            return ProbeResult("open", seconds)
        return ProbeResult("unreachable" if "Unreachable" in output else "timeout", seconds)
    code, output = _exec(backend, lab, node, ["python3", "-c", PROBE_SCRIPT, address, str(port), proto, str(timeout)])
    try:
        data = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeFailure(f"the probe in node '{node}' failed: {output.strip()}") from None
    return ProbeResult(data["result"], data["seconds"])


def describe_path(path: FlowPath) -> list[str]:
    return [path.source.name, *(hop.instance.name for hop in path.hops),
            *([path.ends_at.name] if path.ends_at and path.ends_at.name not in
              [h.instance.name for h in path.hops] else [])]


def explain(backend: Backend, lab: Lab, source: str, target: str, proto: str,
            port: int | None, timeout: float = 2.0, run_probe: bool = True, family: int = 4,
            destination: IPv4Address | IPv6Address | None = None) -> Explanation:
    """For each firewall between source and target, the rule that decides the flow, computed
    from the rules; then confirmed by a real attempt and the counters it moved. The flow is of
    one family (`family`, or the destination's when given): its verdicts are the rules of that
    family's table (iptables or ip6tables), and only that table's counters confirm them."""
    path = flow_path(lab, lab.instance(source), lab.instance(target), proto, port,
                     destination=destination, family=family)
    family = path.flow.destination.version
    verdicts = computed_verdicts(lab, path)
    explanation = Explanation(source, target, str(path.flow.destination), proto, port, describe_path(path),
                              list(path.notes), verdicts, final_action(verdicts), family)
    if not run_probe:
        return explanation
    firewalls = [v.firewall for v in verdicts]
    before = {name: read_counters_by_family(backend, lab.name, name)[family] for name in firewalls}
    explanation.probe = probe(backend, lab.name, source, str(path.flow.destination), proto, port, timeout)
    time.sleep(0.2)   # let the last retransmission or reply cross the firewall
    for verdict in verdicts:
        after = read_counters_by_family(backend, lab.name, verdict.firewall)[family]
        confirm(verdict, before[verdict.firewall], after)
        if not verdict.confirmed:
            explanation.problems.append(f"{verdict.firewall}: {verdict.mismatch}")
    expected = expected_results(verdicts, proto)
    explanation.consistent = explanation.probe.result in expected
    if not explanation.consistent:
        explanation.problems.append(f"the probe got '{explanation.probe.result}', but a flow that is "
                                    f"'{explanation.expected}' gives {' or '.join(sorted(expected))}")
    return explanation
