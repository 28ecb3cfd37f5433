"""Which rule of which firewall decides a flow, and how a probe confirms it.

`computed_verdicts` is pure: it walks the path (lab.firewall.path) and, for
every firewall on it, the first matching rule (lab.firewall.policy.decide).
`confirm` compares that with what really happened: the per-rule packet
counters read before and after a real connection attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.firewall.path import FlowPath
from lab.firewall.policy import ALLOWING, Flow, PolicyRule, decide, node_policy
from lab.topology.lab import Lab

CounterKey = tuple[str, str]          # (chain, rule name)
Counters = dict[CounterKey, tuple[int, int]]   # -> (packets, bytes)
STATE_RULES = ("established", "input-established")   # carry the replies, never decide a new flow

# What a client sees for each verdict (probe results: open, refused, timeout, unreachable).
OUTCOMES = {
    ("allow", "tcp"): {"open", "refused"},          # refused: RST from the target, nothing listens
    ("allow", "udp"): {"open", "refused", "timeout"},
    ("allow", "icmp"): {"open"},
    ("deny", "tcp"): {"timeout"}, ("deny", "udp"): {"timeout"}, ("deny", "icmp"): {"timeout"},
    ("reject", "tcp"): {"refused"}, ("reject", "udp"): {"refused", "unreachable"},
    ("reject", "icmp"): {"unreachable"},
}


@dataclass
class Verdict:
    firewall: str
    chain: str                         # FORWARD (crossing) or INPUT (to the firewall itself)
    flow: Flow
    rule: PolicyRule
    rose: dict[str, int] = field(default_factory=dict)   # rule -> packets seen during the probe
    confirmed: bool | None = None      # None: not probed
    mismatch: str = ""

    @property
    def action(self) -> str:
        return self.rule.action

    def as_dict(self) -> dict:
        return {"firewall": self.firewall, "chain": self.chain, "rule": self.rule.name,
                "action": self.action, "builtin": self.rule.builtin, "source": str(self.flow.source),
                "destination": str(self.flow.destination), "proto": self.flow.proto, "port": self.flow.port,
                "counters_rose": self.rose, "confirmed": self.confirmed, "mismatch": self.mismatch}


def computed_verdicts(lab: Lab, path: FlowPath) -> list[Verdict]:
    """Every firewall the flow meets, up to the first that stops it."""
    verdicts = []
    for hop in path.hops:
        if not registry.is_a(hop.kind, PACKET_FILTER):
            continue
        chain = "FORWARD" if hop.leaves_on else "INPUT"
        rule = decide(node_policy(lab, hop.instance.node), hop.flow, chain)
        verdicts.append(Verdict(hop.instance.name, chain, hop.flow, rule))
        if rule.action not in ALLOWING:
            return verdicts
    return verdicts


def final_action(verdicts: list[Verdict]) -> str:
    for verdict in verdicts:
        if verdict.action not in ALLOWING:
            return verdict.action
    return "allow"


def expected_results(verdicts: list[Verdict], proto: str) -> set[str]:
    return OUTCOMES[(final_action(verdicts), proto)]


def counter_deltas(before: Counters, after: Counters, chain: str) -> dict[str, int]:
    """Rules of one chain whose packet counter rose (a reload in between resets counters:
    then the new value counts)."""
    rose = {}
    for (rule_chain, name), (packets, _bytes) in after.items():
        if rule_chain != chain:
            continue
        old = before.get((rule_chain, name), (0, 0))[0]
        delta = packets - old if packets >= old else packets
        if delta > 0:
            rose[name] = delta
    return rose


def confirm(verdict: Verdict, before: Counters, after: Counters) -> Verdict:
    """Fill in what the counters say: the computed rule must be among the deciding rules
    whose counter rose. Other deciding rules rising means other traffic crossed meanwhile."""
    verdict.rose = counter_deltas(before, after, verdict.chain)
    deciders = {name for name in verdict.rose if name not in STATE_RULES}
    verdict.confirmed = verdict.rule.name in deciders
    if not verdict.confirmed:
        seen = ", ".join(sorted(deciders)) or "none"
        verdict.mismatch = (f"computed '{verdict.rule.name}' but its counter did not rise "
                            f"(rules whose counters rose: {seen})")
    elif deciders - {verdict.rule.name}:
        verdict.mismatch = (f"also rose: {', '.join(sorted(deciders - {verdict.rule.name}))} "
                            "(other traffic crossed the firewall during the probe)")
    return verdict
