"""A trace on the terminal: a waterfall, one line per step, on the client's time axis."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from lab.trace.model import Step, Trace

BAR_WIDTH = 40


def _bar(step: Step, total: float) -> Text:
    scale = BAR_WIDTH / total if total > 0 else 0
    start = min(int(step.start_ms * scale), BAR_WIDTH - 1)
    length = max(1, min(int(round(step.duration_ms * scale)), BAR_WIDTH - start))
    colour = "green" if step.ok else "red"
    return Text(" " * start + "█" * length + " " * (BAR_WIDTH - start - length), style=colour)


def _rows(step: Step, depth: int = 0):
    yield step, depth
    for child in step.children:
        yield from _rows(child, depth + 1)


def waterfall(trace: Trace) -> Table:
    verdict = "[green]OK[/]" if trace.ok else "[red]FAILED[/]"
    table = Table(title=f"{trace.url} from {trace.client}: {verdict} {trace.total_ms:.1f} ms",
                  caption=trace.summary, caption_justify="left")
    for column in ("step", "node", "time", "ms", "what happened"):
        table.add_column(column, no_wrap=column in ("time",))
    span = max([trace.total_ms] + [s.start_ms + s.duration_ms for s in trace.steps]) or 1.0
    for top in trace.steps:
        for step, depth in _rows(top):
            name = ("  " * depth) + (step.kind if depth == 0 else "↳")
            table.add_row(name, step.node, _bar(step, span), f"{step.duration_ms:.1f}",
                          Text(step.detail, style="" if step.ok else "red"))
    return table
