"""The topology's declared link impairments (`impair:`), applied to a running lab through a Backend.

`lab up` calls this after the lab is up: every declared link gets exactly its
impairment (tc replaces what was there, so a recreated node gets it again), and
a link that had one at the last `lab up` but has none now is cleared. What the
last `lab up` applied is remembered in the lab's state directory, so an up that
declares nothing costs nothing. Where the kernel has no netem, the netem part
(delay, loss, ...) cannot be applied: the rate part still is, and one sentence
says which links lost what.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lab.backends.protocol import Backend
from lab.errors import NotSupported
from lab.impair import NETEM_MISSING, Applied, Impairment
from lab.state import state_dir
from lab.topology import Lab
from lab.topology.model import IMPAIR_FIELDS

RECORD = "impairments.json"   # under the lab's state directory: the links the last up impaired


@dataclass
class LinkReport:
    applied: list[Applied] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)          # "node:network"
    netem_dropped: list[str] = field(default_factory=list)    # "node:network (delay 50ms, ...)"
    unsupported: str = ""                                     # the engine cannot impair at all

    @property
    def netem_sentence(self) -> str:
        if not self.netem_dropped:
            return ""
        return f"not applied on {', '.join(self.netem_dropped)}: {NETEM_MISSING}"


def declared(lab: Lab) -> dict[str, Impairment]:
    """"node:network" -> the impairment its topology declares."""
    return {f"{node}:{network}": Impairment(**{name: getattr(spec, name) for name in IMPAIR_FIELDS})
            for (node, network), spec in lab.impairments().items()}


def _rate_only(impairment: Impairment) -> Impairment:
    return Impairment(rate=impairment.rate)


def _previous(lab: Lab) -> list[str]:
    try:
        return list(json.loads((state_dir(lab.name) / RECORD).read_text()))
    except (OSError, ValueError):
        return []


def _remember(lab: Lab, links: list[str]) -> None:
    path = state_dir(lab.name) / RECORD
    if links:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(links)), encoding="utf-8")
    else:
        path.unlink(missing_ok=True)


def apply_declared(backend: Backend, lab: Lab) -> LinkReport:
    """Make the running lab's links match the topology's `impair:` declarations. An engine that
    cannot impair links leaves the lab up, unimpaired, and the report says so in its words."""
    wanted = declared(lab)
    report = LinkReport()
    stale = [link for link in _previous(lab) if link not in wanted]
    if not wanted and not stale:
        return report
    try:
        _apply(backend, lab, wanted, stale, report)
    except NotSupported as error:
        report.unsupported = f"the topology's impair: was not applied: {error}"
    return report


def _apply(backend: Backend, lab: Lab, wanted: dict[str, Impairment], stale: list[str],
           report: LinkReport) -> None:
    netem = backend.netem_available(lab.name) if any(i.netem_words for i in wanted.values()) else True
    for link, impairment in sorted(wanted.items()):
        node, network = link.split(":", 1)
        if impairment.netem_words and not netem:
            report.netem_dropped.append(f"{link} ({' '.join(impairment.netem_words)})")
            impairment = _rate_only(impairment)   # empty when only netem was asked: a clear
        report.applied.append(backend.impair(lab.name, node, network, impairment))
    for link in stale:
        node, network = link.split(":", 1)
        if node in lab.instance_names() and network in lab.instance(node).addresses:
            backend.impair(lab.name, node, network, Impairment())
            report.cleared.append(link)
    _remember(lab, list(wanted))
