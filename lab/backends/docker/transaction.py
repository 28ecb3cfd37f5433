"""An undo log for `lab up`: every change records how to take it back.

Steps are recorded as they happen (from several worker threads); a rollback
runs the undo steps newest first, and tries every one even when some fail, so
one stubborn container cannot keep the rest of the lab from being restored.
Work that destroys something the rollback would need (removing a replaced
container, a node no longer in the topology) is deferred to `commit`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from lab.errors import LabError
from lab.backends.docker.engine import ENGINE_ERRORS

Events = Callable[[str, str, str], None]   # (event, subject, detail)


@dataclass(frozen=True)
class Step:
    subject: str          # the node or network it concerns
    what: str             # said to the user while it runs
    action: Callable[[], None]


class Transaction:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._undo: list[Step] = []
        self._on_commit: list[Step] = []

    def undo_with(self, subject: str, what: str, action: Callable[[], None]) -> None:
        with self._lock:
            self._undo.append(Step(subject, what, action))

    def after_commit(self, subject: str, what: str, action: Callable[[], None]) -> None:
        with self._lock:
            self._on_commit.append(Step(subject, what, action))

    @property
    def has_changes(self) -> bool:
        return bool(self._undo or self._on_commit)

    def rollback(self, events: Events) -> list[str]:
        """Undo everything recorded, newest first; returns what could not be undone."""
        failures = []
        with self._lock:
            steps, self._undo, self._on_commit = list(reversed(self._undo)), [], []
        for step in steps:
            events("rollback", step.subject, step.what)
            try:
                step.action()
            except (LabError, *ENGINE_ERRORS) as error:
                failures.append(f"{step.subject}: {step.what}: {error}")
        return failures

    def commit(self, events: Events) -> None:
        """The run succeeded: drop the undo log and do the deferred removals."""
        with self._lock:
            steps, self._undo, self._on_commit = list(self._on_commit), [], []
        for step in steps:
            step.action()
            events("removed", step.subject, step.what)
