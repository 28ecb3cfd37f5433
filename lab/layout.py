"""Text that fits the terminal: the one place that decides how read commands lay out at a width.

Two rules for every command (`lab trace`, `lab firewall show/explain`, `lab check`, ...):
a word is never cut (a line breaks at spaces only), and a table whose columns do not fit
at their natural width is not squeezed (rich would cut names into "site-d…" or wrap a
counter over two lines) but switches to a stacked layout, one record per few lines, as
`kubectl describe` and `git log` do. Pure: strings in, rich Text lines out.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from rich.text import Text

GAP = "  "          # between table columns and between stacked fields
FIELD_INDENT = 4    # stacked fields sit under their record's title


def fitted(text: str, width: int) -> str:
    """text on one line of at most width characters, its end cut off and marked when longer."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def wrap(text: str, width: int, indent: int = 0, hang: int | None = None) -> list[str]:
    """text broken at spaces into lines of at most width columns (a single word longer than
    the line stays whole); the first line indented by indent, the others by hang (default: indent)."""
    hang = indent if hang is None else hang
    return textwrap.wrap(text, max(width, 1), initial_indent=" " * indent, subsequent_indent=" " * hang,
                         break_long_words=False, break_on_hyphens=False)


def wrapped(text: str, width: int, indent: int = 0, hang: int | None = None, style: str = "") -> list[Text]:
    return [Text(line, style=style) for line in wrap(text, width, indent, hang)]


@dataclass
class Record:
    """One row of a table told as a block: a title line, then 'key value' fields."""
    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    style: str = ""


def table_width(columns: list[str], rows: list[list[str]]) -> int:
    """Columns wide enough for their longest cell (or heading), with a gap between them."""
    widths = [max(len(cell) for cell in [name, *(row[i] for row in rows)]) for i, name in enumerate(columns)]
    return sum(widths) + len(GAP) * (len(columns) - 1)


def table(columns: list[str], rows: list[list[str]], right: frozenset[str] = frozenset(),
          styles: list[str] | None = None) -> list[Text]:
    """A plain aligned table (heading, then one line per row), every cell whole."""
    widths = [max(len(cell) for cell in [name, *(row[i] for row in rows)]) for i, name in enumerate(columns)]

    def line(cells: list[str]) -> str:
        parts = [cell.rjust(w) if name in right else cell.ljust(w) for name, cell, w in zip(columns, cells, widths)]
        return GAP.join(parts).rstrip()

    styles = styles or [""] * len(rows)
    return [Text(line(columns), style="bold"), *(Text(line(row), style=s) for row, s in zip(rows, styles))]


def stacked(records: list[Record], width: int) -> list[Text]:
    """Each record as its title, then its fields flowed after one another on indented lines;
    a field moves to the next line rather than break, and only a field longer than a whole
    line is wrapped (at its spaces, under its own value)."""
    out: list[Text] = []
    for record in records:
        out.extend(wrapped(record.title, width, 0, FIELD_INDENT, record.style))
        line = ""
        for key, value in record.fields:
            item = f"{key} {value}" if key else value
            candidate = f"{line}{GAP}{item}" if line else " " * FIELD_INDENT + item
            if len(candidate) <= width:
                line = candidate
                continue
            if line:
                out.append(Text(line, style=record.style))
            if FIELD_INDENT + len(item) <= width:
                line = " " * FIELD_INDENT + item
            else:
                hang = FIELD_INDENT + (len(key) + 1 if key else 0)
                out.extend(wrapped(item, width, FIELD_INDENT, min(hang, width // 2), record.style))
                line = ""
        if line:
            out.append(Text(line, style=record.style))
    return out


def table_or_stacked(columns: list[str], rows: list[list[str]], records: list[Record], width: int,
                     right: frozenset[str] = frozenset(), styles: list[str] | None = None) -> list[Text]:
    """The table when every column fits at its natural width, else the same rows stacked."""
    if rows and table_width(columns, rows) <= width:
        return table(columns, rows, right, styles)
    return stacked(records, width)


__all__ = ["Record", "stacked", "table", "table_or_stacked", "table_width", "wrap", "wrapped"]
