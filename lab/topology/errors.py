"""Topology errors: every problem found in a file, reported together.

Each problem carries the file, line and column it refers to and the dotted
path of the field, so a person can jump straight to it in an editor.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.errors import LabError


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a topology file. Ordered by position so reports read top to bottom."""

    line: int
    column: int
    path: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return printable(text)


def printable(text: str) -> str:
    """Control characters written as escapes: a name with ESC [31m must not colour the terminal."""
    return "".join(c if c.isprintable() or c == "\n" else ascii(c)[1:-1] for c in text)


class TopologyError(LabError):
    """A topology file that cannot be used. Carries every problem found, sorted by line."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in the topology"
        super().__init__("\n".join([*map(str, self.problems), summary]))
