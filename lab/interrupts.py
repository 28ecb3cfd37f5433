"""Signals that end a command: SIGINT, SIGTERM and SIGHUP all mean "stop and undo".

`stop_on_signals` turns SIGTERM and SIGHUP into the same exception Ctrl-C
raises (Interrupted is a KeyboardInterrupt), so one rollback path serves all
three. `shielded` keeps a rollback from being abandoned: while it runs, further
signals only print a notice once. `deferred_signals` records a signal and raises it
only where the block asks (`check()`), for a block that waits on locks; `settled`
and `map_settled` wait for thread-pool jobs that way, and every wait of the main
thread on a pool goes through them (a signal raised inside the wait can leave a
lock held and hang the command).
"""

from __future__ import annotations

import concurrent.futures
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
SLICE_SECONDS = 0.2   # how long a wait lasts before it looks for a recorded signal
_shields = []          # the shielded() blocks open now (main thread only)

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


@contextmanager
def _handling(handler) -> Iterator[None]:
    """Within the block, the stop signals go to handler (main thread only: Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def stop_on_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP raise Interrupted in the main thread."""
    return _handling(_raise_interrupted)


def shielded(notice: Callable[[], None]):
    """Within the block, signals do not interrupt: the first one calls notice()."""
    told = []

    def tell(_signum, _frame):
        if not told:
            told.append(True)
            notice()

    @contextmanager
    def shield() -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield   # signals reach the main thread only
            return
        with _handling(tell):
            _shields.append(tell)
            try:
                yield
            finally:
                _shields.pop()

    return shield()


class Deferred:
    """The stop signal recorded within deferred_signals(), raised by check()."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)


@contextmanager
def deferred_signals() -> Iterator[Deferred]:
    """Within the block, a stop signal is only recorded; the block raises it with check(),
    where it chooses. An exception raised by a handler lands at any bytecode, also inside
    a lock's acquire (concurrent.futures takes a future's lock while waiting on it), and
    leaves the lock held: the worker that then needs it to finish hangs, and the rollback
    that waits for the worker with it (seen once: a SIGHUP left `lab up` waiting for ever)."""
    deferred = Deferred()
    if _shields:   # within a shield (a rollback) signals stay told and ignored: nothing to raise
        yield deferred
        return

    def record(signum, _frame):
        if deferred.signum is None:
            deferred.signum = signum

    with _handling(record):
        yield deferred
    deferred.check()   # a signal the block did not look for is not lost when it ends


def settled(jobs: Iterable[Future]) -> None:
    """Wait until every job has finished. A stop signal that comes meanwhile cancels the
    jobs not yet begun and is raised once the running ones have finished: never inside the
    wait, and never while a worker is still changing something its caller must undo."""
    pending = set(jobs)
    with deferred_signals() as signals:
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=SLICE_SECONDS)
            if signals.signum is not None:
                for job in pending:
                    job.cancel()


def map_settled(work: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """[work(item) for item in items], up to `workers` at once; a stop signal as in settled(),
    the pool shut down before it is raised."""
    items = list(items)
    with deferred_signals():
        pool = ThreadPoolExecutor(max(1, min(workers, len(items))))
        try:
            jobs = [pool.submit(work, item) for item in items]
            settled(jobs)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [job.result() for job in jobs]
