"""A trace on the terminal, readable at any width (80 columns and up).

Stacked, like `git log` or `kubectl describe`: one heading line per step (kind,
node, when, how long, observed or derived, and a bar on the shared time axis that
takes whatever width is left), then what happened, wrapped at word boundaries and
indented under it. Nothing is cut: a detail longer than the line continues on
the next one.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from lab.layout import wrapped
from lab.trace.model import DERIVED, Step, Trace
from lab.trace.pcap import ranges

MIN_BAR = 10


def _bar(step: Step, span: float, width: int) -> Text:
    scale = width / span if span > 0 else 0
    start = min(int(step.start_ms * scale), width - 1)
    length = max(1, min(int(round(step.duration_ms * scale)), width - start))
    return Text("·" * start + "█" * length + "·" * (width - start - length), style="green" if step.ok else "red")


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10_000 else f"{value:.0f}"


def _heading(step: Step, depth: int, span: float, width: int) -> Text:
    name = ("  " * depth) + (step.kind if depth == 0 else "↳ " + step.kind)
    mark = "✓" if step.ok else "✗"
    known = "derived" if step.source == DERIVED else "observed"
    left = f"{mark} {name:<10} {step.node:<12} {_ms(step.start_ms):>7} +{_ms(step.duration_ms):>7} ms {known:<8} "
    text = Text(left, style="" if step.ok else "red")
    room = width - len(left)
    if room >= MIN_BAR:
        text.append_text(_bar(step, span, room))
    return text


def _rows(step: Step, depth: int = 0):
    yield step, depth
    for child in step.children:
        yield from _rows(child, depth + 1)


def lines(trace: Trace, width: int = 80) -> list:
    verdict = Text("OK", style="green") if trace.ok else Text("FAILED", style="red")
    head = Text(f"{trace.url} from {trace.client}: ")
    head.append_text(verdict)
    head.append(f", {_ms(trace.total_ms)} ms, HTTP {trace.status or 'none'}")
    span = max([trace.total_ms] + [s.start_ms + s.duration_ms for s in trace.steps]) or 1.0
    summary = wrapped(trace.summary, width, style="bold" if trace.ok else "bold red")
    out: list = [head, *summary, Text(f"trace id {trace.trace_id}", style="dim"),
                 Text(f"  {'step':<10} {'node':<12} {'start':>7} {'+time':>8} ms source")]
    for top in trace.steps:
        for step, depth in _rows(top):
            out.append(_heading(step, depth, span, width))
            # wrapped here, at spaces only (a word is never cut), so no line ends in padding
            out.extend(wrapped(step.detail, width, 4 + 2 * depth, style="" if step.ok else "red"))
            if step.packets:
                out.extend(wrapped(f"packets {ranges(step.packets)}", width, 4 + 2 * depth, style="dim"))
    return out


def waterfall(trace: Trace, width: int = 80) -> Group:
    """The stacked waterfall, every line at most width columns (unless one word is longer)."""
    return Group(*lines(trace, width))
