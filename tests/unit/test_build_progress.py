"""`lab up`'s build progress: one line per step, never wider than 80 columns."""

import io

from rich.console import Console

from lab.cli import runtime
from lab.layout import fitted


def test_every_progress_line_fits_80_columns_and_says_where_it_was_cut(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(runtime, "out", Console(file=screen, width=200, color_system=None))
    progress = runtime._BuildProgress()
    progress("database", "Step 4/11 : RUN install -d -o postgres " + "x" * 150)
    progress("database", "running debootstrap bookworm (about 30 s)")
    progress("database", "some other output")   # not a step: not shown
    lines = screen.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    assert lines[1].endswith("…") and "database: Step 4/11 : RUN install" in lines[1]
    assert lines[2].endswith("running debootstrap bookworm (about 30 s)")


def test_fitted_keeps_short_text_and_cuts_long_text_to_the_width():
    assert fitted("short", 10) == "short"
    assert fitted("exactly 10", 10) == "exactly 10"
    assert fitted("eleven char", 10) == "eleven ch…"
