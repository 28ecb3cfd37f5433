"""Link impairments, as values: what `lab impair` asks for, checked, and the tc lines for it.

Pure: no engine here. A backend applies the lines in the node's network
namespace (lab/backends/docker/impair.py) and reports what the kernel holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lab.errors import UsageError

NETEM_MISSING = ("this machine's kernel has no netem queueing discipline (tc says \"Specified qdisc kind "
                 "is unknown\"), so delay, jitter, loss, duplication, corruption and reordering cannot "
                 "be applied here; rate limits work (tbf)")
RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit)$")
TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
PERCENT = re.compile(r"^\d+(\.\d+)?%$")


@dataclass(frozen=True)
class Impairment:
    rate: str | None = None          # e.g. 2mbit
    delay: str | None = None         # e.g. 50ms
    jitter: str | None = None        # e.g. 10ms (with delay)
    loss: str | None = None          # e.g. 1%
    duplicate: str | None = None
    corrupt: str | None = None
    reorder: str | None = None

    @property
    def netem_words(self) -> list[str]:
        words = []
        if self.delay:
            words += ["delay", self.delay] + ([self.jitter] if self.jitter else [])
        for name in ("loss", "duplicate", "corrupt", "reorder"):
            if getattr(self, name):
                words += [name, getattr(self, name)]
        return words

    @property
    def empty(self) -> bool:
        return not any(vars(self).values())


def check_values(impairment: Impairment) -> None:
    """UsageError naming each value tc would not understand, with the form it wants."""
    problems = []
    if impairment.rate and not RATE.match(impairment.rate):
        problems.append(f"--rate {impairment.rate}: write it as a number and a unit, e.g. 2mbit or 500kbit")
    for name in ("delay", "jitter"):
        value = getattr(impairment, name)
        if value and not TIME.match(value):
            problems.append(f"--{name} {value}: write it as a number and a unit, e.g. 50ms")
    for name in ("loss", "duplicate", "corrupt", "reorder"):
        value = getattr(impairment, name)
        if value and not PERCENT.match(value):
            problems.append(f"--{name} {value}: write it as a percentage, e.g. 1%")
    if impairment.jitter and not impairment.delay:
        problems.append("--jitter needs --delay (jitter varies the delay)")
    if problems:
        raise UsageError("; ".join(problems))


def describe_qdisc(line: str) -> str:
    """One line of `tc qdisc show` told short: its kind and settings ("tbf rate 4Mbit burst 5000b
    lat 200ms"), without the handle, the parent and the reference count."""
    words = line.split()
    if len(words) < 3 or words[0] != "qdisc":
        return line.strip()
    rest, skip = [], 0
    for word in words[3:]:
        if skip:
            skip -= 1
        elif word == "root":
            continue
        elif word in ("parent", "refcnt"):
            skip = 1
        else:
            rest.append(word)
    return " ".join([words[1], *rest])


def _rate_bytes_per_second(rate: str) -> float:
    number, unit = re.match(r"^([\d.]+)(\w+)$", rate).groups()
    return float(number) * {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[unit] / 8


def tc_script(impairment: Impairment) -> str:
    """The tc commands for one interface ($DEV): netem at the root (if asked) with tbf under it."""
    lines = ["tc qdisc del dev \"$DEV\" root 2>/dev/null || true"]
    burst = max(int(_rate_bytes_per_second(impairment.rate) / 100), 3200) if impairment.rate else 0
    tbf = f"tbf rate {impairment.rate} burst {burst} latency 200ms" if impairment.rate else ""
    if impairment.netem_words and tbf:
        lines.append(f"tc qdisc add dev \"$DEV\" root handle 1: netem {' '.join(impairment.netem_words)}")
        lines.append(f"tc qdisc add dev \"$DEV\" parent 1:1 handle 10: {tbf}")
    elif impairment.netem_words:
        lines.append(f"tc qdisc add dev \"$DEV\" root netem {' '.join(impairment.netem_words)}")
    elif tbf:
        lines.append(f"tc qdisc add dev \"$DEV\" root {tbf}")
    return "\n".join(lines)


@dataclass
class Applied:
    node: str
    network: str
    interface: str
    qdiscs: list[str] = field(default_factory=list)   # `tc qdisc show` afterwards: what the kernel holds
