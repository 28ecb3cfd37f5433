"""Signals that end a command: SIGINT, SIGTERM and SIGHUP all mean "stop and undo".

`stop_on_signals` turns SIGTERM and SIGHUP into the same exception Ctrl-C
raises (Interrupted is a KeyboardInterrupt), so one rollback path serves all
three. `shielded` keeps a rollback from being abandoned: while it runs, further
signals only print a notice once.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A signal asked the command to stop."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum   # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise Interrupted in the main thread."""
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def shielded(notice: Callable[[], None]) -> Iterator[None]:
    """Within the block, signals do not interrupt: the first one calls notice()."""
    if not _in_main_thread():
        yield
        return
    told = []

    def tell(_signum, _frame):
        if not told:
            told.append(True)
            notice()

    previous = {s: signal.signal(s, tell) for s in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
