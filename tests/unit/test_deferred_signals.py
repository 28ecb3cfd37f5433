"""A stop signal within deferred_signals() is raised only where the block checks for it;
settled() and map_settled() wait for pool jobs that way."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab.interrupts import Interrupted, deferred_signals, map_settled, settled, shielded, stop_on_signals


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)   # the handler runs in the main thread at its next bytecode


def test_a_signal_in_the_block_waits_for_check_and_the_raising_handler_comes_back():
    with stop_on_signals():
        with pytest.raises(Interrupted) as raised:
            with deferred_signals() as signals:
                _signal_self(signal.SIGHUP)
                _signal_self(signal.SIGTERM)      # the first one is the one told
                reached = True                    # nothing was raised at the signals
                signals.check()
        assert reached and raised.value.signum == signal.SIGHUP and raised.value.exit_code == 129
        with pytest.raises(Interrupted):          # outside the block: raised at once again
            _signal_self(signal.SIGTERM)


def test_no_signal_no_exception():
    with stop_on_signals(), deferred_signals() as signals:
        signals.check()
        assert signals.signum is None


def test_a_signal_the_block_never_checked_is_raised_as_it_ends():
    with stop_on_signals():
        with pytest.raises(Interrupted) as raised:
            with deferred_signals():
                _signal_self(signal.SIGINT)
                finished = True
        assert finished and raised.value.exit_code == 130


def test_settled_raises_a_signal_only_once_the_running_jobs_end_and_cancels_the_rest():
    """One worker: the first job runs when the signal comes, the other three wait. The
    signal is raised after the first job ended (its end time against the raise's), and the
    jobs never begun never run."""
    ran: list[str] = []
    ended: list[float] = []

    def job(name: str) -> None:
        ran.append(name)
        time.sleep(0.6)
        ended.append(time.monotonic())

    pool = ThreadPoolExecutor(1)
    jobs = [pool.submit(job, name) for name in "abcd"]
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with stop_on_signals():
        with pytest.raises(Interrupted) as raised:
            settled(jobs)
    raised_at = time.monotonic()
    pool.shutdown(wait=True)
    assert raised.value.signum == signal.SIGTERM
    assert ran == ["a"] and ended and ended[0] <= raised_at
    assert all(job.cancelled() for job in jobs[1:])


def test_map_settled_gives_results_in_order_and_leaves_no_worker_after_a_signal():
    assert map_settled(lambda n: n * n, [3, 1, 2], 2) == [9, 1, 4]
    before = threading.active_count()
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    with stop_on_signals():
        with pytest.raises(Interrupted):
            map_settled(lambda _: time.sleep(0.4), range(8), 2)
    time.sleep(0.05)   # the timer's own thread ends
    assert threading.active_count() <= before


def test_within_a_shield_settled_only_tells_of_a_signal():
    told: list[bool] = []
    pool = ThreadPoolExecutor(1)
    job = pool.submit(time.sleep, 0.4)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with stop_on_signals(), shielded(lambda: told.append(True)):
        settled([job])   # nothing raised: a rollback under a shield runs to its end
    pool.shutdown(wait=True)
    assert told == [True] and job.done() and not job.cancelled()
