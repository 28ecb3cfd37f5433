"""Link impairments as the kernel holds them: `tc -s qdisc show` read inside each node.

Reading qdiscs needs no privilege, and every lab image has tc (iproute2), so this
is a plain exec in the node, not a helper. What it prints is turned into values
by pure functions (parse_shaping), so `lab status` and `lab trace` say what is
really set on a link, not what a file says should be, and `compare` tells where
the two differ (someone ran tc by hand, or `lab impair` changed a link).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from lab.backends.protocol import Backend
from lab.errors import LabError
from lab.impair import Impairment, describe_qdisc
from lab.interrupts import map_settled

READ_COMMAND = ["sh", "-c", "ip -o -4 addr show; echo '--- qdiscs'; tc -s qdisc show"]
UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
QUIET = {"noqueue", "pfifo_fast", "fq_codel", "mq", "noop"}   # a link's defaults, not impairments


@dataclass
class Shaping:
    """One node's impaired interface, as the kernel holds it."""
    node: str
    network: str
    interface: str
    qdiscs: list[str] = field(default_factory=list)   # described short: "tbf rate 4Mbit burst 5000b lat 200ms"
    rate_bps: float | None = None
    delay_ms: float | None = None
    sent_bytes: int = 0                               # what the shaping qdisc counted so far
    expected: str = ""                                # the topology's impair: for this link ("" none)
    differs: str = ""                                 # how observed and expected differ ("" they agree)

    @property
    def link(self) -> str:
        return f"{self.node}:{self.network}"

    def as_dict(self) -> dict:
        return asdict(self)


def _bits(text: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)([KMG]?bit)", text, re.I)
    return float(match.group(1)) * UNITS[match.group(2).lower()] if match else None


def _ms(text: str) -> float | None:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(match.group(1)) * TIME_UNITS[match.group(2)] if match else None


def parse_shaping(node: str, text: str, networks: dict[str, str]) -> list[Shaping]:
    """Each interface of `ip -o -4 addr show` + `tc -s qdisc show` output that carries a qdisc
    other than a link's default; networks: address -> the topology's network."""
    addresses, _, qdiscs = text.partition("--- qdiscs")
    device_network = {}
    for line in addresses.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == "inet":
            device_network[words[1]] = networks.get(words[3].split("/")[0], words[1])
    found: dict[str, Shaping] = {}
    current = None
    for line in qdiscs.splitlines():
        words = line.split()
        if words[:1] == ["qdisc"] and "dev" in words:
            device = words[words.index("dev") + 1]
            current = None
            if words[1] in QUIET or device not in device_network:
                continue
            current = found.setdefault(device, Shaping(node, device_network[device], device))
            at = words.index("dev")
            current.qdiscs.append(describe_qdisc(" ".join(words[:at] + words[at + 2:])))
            _read_values(current, words)
        elif current is not None and words[:1] == ["Sent"] and len(words) > 1 and words[1].isdigit():
            current.sent_bytes = max(current.sent_bytes, int(words[1]))
    return list(found.values())


def _read_values(shaping: Shaping, words: list[str]) -> None:
    for name, value in zip(words, words[1:]):
        if name == "rate" and words[1] == "tbf":
            shaping.rate_bps = _bits(value)
        elif name == "delay" and words[1] == "netem":
            shaping.delay_ms = _ms(value)


def observe(backend: Backend, lab: str, addresses: dict[str, dict[str, str]]) -> list[Shaping]:
    """Every impaired interface of the given nodes (node -> {network: address}), read at once.
    A node that cannot be read (stopped, gone) is left out: it shapes nothing now."""
    def one(node: str) -> list[Shaping]:
        try:
            result = backend.exec(lab, node, READ_COMMAND)
        except LabError:
            return []
        networks = {address: network for network, address in addresses[node].items()}
        return parse_shaping(node, result.stdout, networks) if result.code == 0 else []

    return [shaping for found in map_settled(one, addresses, 8) for shaping in found]


def _declared_words(impairment: Impairment) -> str:
    words = [f"rate {impairment.rate}"] if impairment.rate else []
    return " ".join(words + impairment.netem_words)


def compare(observed: list[Shaping], declared: dict[str, Impairment],
            netem_available: Callable[[], bool] = lambda: True) -> list[Shaping]:
    """observed, each with what the topology declares for its link and how they differ; plus an
    entry for each declared link the kernel does not shape at all. A declared delay missing on a
    kernel without netem is said to be that (netem_available is asked only then)."""
    by_link = {shaping.link: shaping for shaping in observed}
    for link, impairment in declared.items():
        node, network = link.split(":", 1)
        shaping = by_link.get(link)
        if shaping is None:
            shaping = by_link[link] = Shaping(node, network, "?")
        shaping.expected = _declared_words(impairment)
        shaping.differs = _difference(shaping, impairment, netem_available)
    for shaping in by_link.values():
        if not shaping.expected:
            shaping.differs = "set at run time (lab impair, or tc by hand): the topology declares nothing here"
    return sorted(by_link.values(), key=lambda s: s.link)


def _difference(shaping: Shaping, impairment: Impairment, netem_available: Callable[[], bool]) -> str:
    problems = []
    wanted_rate = _bits(impairment.rate) if impairment.rate else None
    if wanted_rate != shaping.rate_bps and not (wanted_rate and shaping.rate_bps
                                                and abs(wanted_rate - shaping.rate_bps) < 0.01 * wanted_rate):
        problems.append(f"rate {_rate_words(shaping.rate_bps)} in the kernel, {impairment.rate or 'none'} declared")
    wanted_delay = _ms(impairment.delay) if impairment.delay else None
    if wanted_delay is not None and shaping.delay_ms is None and not netem_available():
        problems.append(f"delay {impairment.delay} declared, not applied: this kernel has no netem")
    elif wanted_delay != shaping.delay_ms:
        held = f"{shaping.delay_ms:g} ms" if shaping.delay_ms is not None else "none (no netem qdisc)"
        problems.append(f"delay {held} in the kernel, {impairment.delay or 'none'} declared")
    return "; ".join(problems)


def _rate_words(bps: float | None) -> str:
    if bps is None:
        return "none"
    return f"{bps / 1e6:.3g} Mbit/s" if bps >= 1e6 else f"{bps / 1e3:.3g} kbit/s"


rate_words = _rate_words
