"""`lab browse` for people: each load, its name lookup, then one block per request.

Pure: a BrowseResult in, rich Text lines out, at the terminal's width (lab/layout.py: a
word is never cut). A request's title line is what the browser recorded (method, path,
status, resource type, HTTP version, connection, cache, time), its next line the phases,
then what the lab recorded about it, each claim marked observed (and where) or derived.
"""

from __future__ import annotations

from rich.text import Text

from lab.browse.evidence import OBSERVED, Claim, reached_the_lab
from lab.browse.har import NETWORK, PHASES, Entry, Visit
from lab.browse.model import BrowseResult
from lab.layout import wrapped

INDENT = 4


def connection(entry: Entry) -> str:
    if entry.reused is None:
        return "-"
    return f"{'reused' if entry.reused else 'new'} conn {entry.connection_id}"


def protocol(entry: Entry) -> str:
    return {"h2": "HTTP/2", "http/1.1": "HTTP/1.1", "h3": "HTTP/3"}.get(entry.protocol, entry.protocol or "-")


def title(number: int | None, entry: Entry) -> str:
    status = entry.error or (str(entry.status) if entry.status is not None else "no answer")
    total = f"{entry.total_ms:.1f} ms" if entry.total_ms is not None else "0 ms"
    return (f"{'' if number is None else f'{number:>2} '}{entry.method} {entry.path}  {status}  {entry.resource or '-'}  {protocol(entry)}  "
            f"{connection(entry)}  {entry.cache}  {total}")


def phases_text(entry: Entry) -> str:
    if not entry.phases:
        return "not sent: answered by the browser's cache" if entry.cache != NETWORK else "no timing recorded"
    return "ms: " + " ".join(f"{phase} {entry.phases.get(phase, 0.0):.1f}" for phase in PHASES)


def claim_text(claim: Claim) -> str:
    return f"{claim.text} ({claim.source}: {claim.where})"


def _visit_head(result: BrowseResult, visit: Visit, width: int) -> list[Text]:
    navigation = visit.navigation or {}
    load = navigation.get("loadEventEnd")
    when = f", load event at {load:.0f} ms (the browser's Navigation Timing)" if load else ""
    head = f"load {visit.number} of {visit.url} from {result.client}: {len(visit.entries)} requests{when}"
    lines = wrapped(head, width, 0, INDENT, "bold")
    name = next((n for n in result.names if n.visit == visit.number), None)
    for claim in name.claims if name else []:
        lines.extend(wrapped("name: " + claim_text(claim), width, INDENT, INDENT + 2))
    if visit.error:
        lines.extend(wrapped(f"the browser said: {visit.error}", width, INDENT, INDENT + 2, "red"))
    return lines


def _request(result: BrowseResult, number: int, entry: Entry, width: int) -> list[Text]:
    failed = entry.error is not None or (entry.status or 0) >= 400
    lines = wrapped(title(number, entry), width, 0, INDENT, "red" if failed else "")
    lines.extend(wrapped(phases_text(entry), width, INDENT, INDENT + 2, "dim"))
    found = result.evidence.get(entry.trace_id or "") if reached_the_lab(entry) else None
    if found is None:
        if entry.cache != NETWORK and not entry.phases:
            return lines
        lines.extend(wrapped("the lab: no record (the request carried no trace id the lab answered)", width,
                             INDENT, INDENT + 2, "dim"))
        return lines
    lines.extend(wrapped(f"trace {found.trace_id}", width, INDENT, INDENT + 2, "dim"))
    for claim in found.claims:
        style = "" if claim.source == OBSERVED else "italic"
        lines.extend(wrapped(claim_text(claim), width, INDENT, INDENT + 2, style))
    return lines


def step_text(number: int, step) -> str:
    """One journey step in a line of words: what, where, when, and how it is known."""
    nodes = f" [{', '.join(step.nodes)}]" if step.nodes else ""
    when = f", {step.ms:.3f} ms" if step.ms is not None else ""
    return f"{number:>2} {step.name}{nodes}: {step.said} ({step.source}: {step.evidence}{when})"


def journey_lines(journey, width: int) -> list[Text]:
    """A load's journey: its 13 steps in order, then the count of the observed ones."""
    lines = wrapped(f"the journey of load {journey.visit}, step by step:", width, 0, INDENT, "bold")
    for number, step in enumerate(journey.steps, 1):
        style = "red" if step.broken else ("" if step.source == OBSERVED else "italic")
        lines.extend(wrapped(step_text(number, step), width, 0, INDENT, style))
    lines.extend(wrapped(journey.summary, width, 0, INDENT, "bold red" if journey.broken else "bold"))
    return lines


def failures(result: BrowseResult) -> list[str]:
    """One sentence per failed request: which, and where it failed by the lab's record."""
    said = []
    for visit in result.visits:
        for entry in visit.entries:
            if entry.error is None and (entry.status or 0) < 400:
                continue
            found = result.evidence.get(entry.trace_id or "") if reached_the_lab(entry) else None
            where = ""
            if found is not None and found.failed_at:
                tried = f"; it tried {', '.join(found.chosen)}" if found.chosen else ""
                if found.pool:
                    tried += f"; no server of {found.pool} ({', '.join(found.pool_members) or '?'}) was left to try"
                where = f": it failed at {found.failed_at} ({found.lb} logged {found.lb_status}{tried})"
            elif entry.error:
                where = f": the browser said {entry.error}"
            said.append(f"load {visit.number}: {entry.method} {entry.path} {entry.status or ''}".rstrip() + where)
    return said


def render(result: BrowseResult, width: int) -> list[Text]:
    lines: list[Text] = []
    if result.error:
        lines.extend(wrapped(f"the browser could not load {result.url}: {result.error}", width, 0, INDENT, "red"))
    for visit in result.visits:
        if lines:
            lines.append(Text(""))
        lines.extend(_visit_head(result, visit, width))
        for number, entry in enumerate(visit.entries, 1):
            lines.extend(_request(result, number, entry, width))
        for journey in (j for j in result.journeys if j.visit == visit.number):
            lines.append(Text(""))
            lines.extend(journey_lines(journey, width))
    problems = failures(result)
    lines.append(Text(""))
    if problems:
        lines.extend(wrapped(f"{len(problems)} request(s) failed:", width, 0, INDENT, "bold red"))
        for problem in problems:
            lines.extend(wrapped(problem, width, INDENT, INDENT + 2, "red"))
    elif result.ok:
        lines.extend(wrapped("the page loaded; every request answered", width, 0, INDENT, "bold green"))
    return lines
