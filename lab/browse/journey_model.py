"""The journey's vocabulary: its 13 steps, a step, a load's journey, and one load's share of
the recording (what lab.browse.journey and lab.browse.journey_wire read). Plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lab.browse.evidence import LabEvidence, NameLookup
from lab.browse.har import Visit
from lab.topology import Lab
from lab.trace.wire import Packet

STEPS = ("browser cache", "OS cache", "resolver cache", "root", "TLD", "authoritative", "routers",
         "firewall", "TCP", "TLS", "load balancer", "web/app server", "database")
(BROWSER_CACHE, OS_CACHE, RESOLVER_CACHE, ROOT, TLD, AUTHORITATIVE, ROUTERS, FIREWALL, TCP, TLS, LOAD_BALANCER,
 SERVER, DATABASE) = STEPS
OBSERVED, DERIVED, NOT_REACHED, UNSEEN = "observed", "derived", "not reached", "not observed"
CHROMIUM = "Chromium's DevTools record"


@dataclass
class JourneyStep:
    name: str
    nodes: list[str]
    said: str
    evidence: str              # the record it was read from, or what it was worked out from
    source: str                # OBSERVED, DERIVED, NOT_REACHED or UNSEEN
    ms: float | None = None
    broken: bool = False       # the load failed here

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Journey:
    visit: int
    steps: list[JourneyStep] = field(default_factory=list)

    @property
    def observed(self) -> int:
        return sum(1 for step in self.steps if step.source == OBSERVED)

    @property
    def broken(self) -> JourneyStep | None:
        return next((step for step in self.steps if step.broken), None)

    @property
    def summary(self) -> str:
        text = f"journey: {self.observed} of {len(self.steps)} steps observed"
        if self.broken is not None:
            text += f"; it broke at {self.broken.name}: {self.broken.said}"
        return text

    def as_dict(self) -> dict:
        return {"visit": self.visit, "observed": self.observed, "steps": [s.as_dict() for s in self.steps],
                "broken": self.broken.name if self.broken else None, "summary": self.summary}


@dataclass
class LoadRecord:
    """One load's share of the recording, and what the steps need of the lab."""
    lab: Lab
    client: str
    host: str
    visit: Visit
    name: NameLookup | None
    evidence: list[LabEvidence]
    dns: list[dict]                      # the resolver's packets within the load's window
    resolver: str | None
    resolver_addresses: set[str]
    wire: dict[str, list[Packet]]        # each node's packets within the load's window
    port: int
    counters: dict | None                # firewall -> {"before": rows, "after": rows}, the whole browse
    loads: int = 1                       # how many loads the counters span
    not_running: list[str] = field(default_factory=list)   # routers and firewalls the engine could not run in
