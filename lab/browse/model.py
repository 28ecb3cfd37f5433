"""A page load as `lab browse` reports it: the browser's record of each load, the lab's record
of each request that reached it (by trace id), and how the page's name was found. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.browse.evidence import LabEvidence, NameLookup, reached_the_lab
from lab.browse.har import Visit


@dataclass
class BrowseResult:
    url: str
    lab: str
    client: str
    visits: list[Visit]
    evidence: dict[str, LabEvidence] = field(default_factory=dict)    # trace id -> the lab's record
    names: list[NameLookup] = field(default_factory=list)            # one per visit
    screenshot: bytes | None = None
    error: str | None = None            # the browser's own failure (it never loaded the page)
    journeys: list = field(default_factory=list)    # one lab.browse.journey.Journey per visit

    def as_dict(self) -> dict:
        visits = []
        for visit in self.visits:
            entries = []
            for entry in visit.entries:
                found = self.evidence.get(entry.trace_id or "") if reached_the_lab(entry) else None
                entries.append({**entry.as_dict(), "lab": found.as_dict() if found else None})
            name = next((n.as_dict() for n in self.names if n.visit == visit.number), None)
            journey = next((j.as_dict() for j in self.journeys if j.visit == visit.number), None)
            visits.append({**visit.as_dict(), "entries": entries, "name": name, "journey": journey})
        return {"schema": "lab.browse/1", "url": self.url, "lab": self.lab, "source": self.client,
                "ok": self.ok, "error": self.error, "visits": visits}

    @property
    def ok(self) -> bool:
        """The page (every load's document) arrived, and no request failed."""
        return self.error is None and all(_visit_ok(v) for v in self.visits) and bool(self.visits)


def _visit_ok(visit: Visit) -> bool:
    return visit.error is None and bool(visit.entries) and all(
        e.error is None and (e.status or 0) < 400 for e in visit.entries if e.resource == "Document")
