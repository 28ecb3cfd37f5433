"""The writer lock, the undo log and signal handling, without an engine.

The lock is tested across real processes (a second process is refused while the
first holds it; a SIGKILLed holder's lock is taken over); signals are real
signals sent to this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lab.errors import LabBusy, RuntimeFailure
from lab.interrupts import Interrupted, shielded, stop_on_signals
from lab.lock import lab_writer
from lab.backends.docker.transaction import Transaction

HOLDER = textwrap.dedent("""
    import sys, time
    from lab.lock import lab_writer
    with lab_writer(sys.argv[1], "up"):
        print("held", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    return tmp_path


def _hold_in_other_process(lab: str, state) -> subprocess.Popen:
    env = {**os.environ, "LAB_STATE_DIR": str(state)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, lab], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_is_refused_with_the_first_ones_pid(state):
    holder = _hold_in_other_process("shop", state)
    try:
        with pytest.raises(LabBusy) as caught:
            with lab_writer("shop", "down"):
                pass
        assert f"`lab up` (pid {holder.pid}" in str(caught.value)
        assert "busy" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_writers_lock_is_taken_over(state):
    holder = _hold_in_other_process("shop", state)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with lab_writer("shop", "up"):   # no error: the kernel dropped the dead process's lock
        pass


def test_other_labs_are_not_locked(state):
    holder = _hold_in_other_process("shop", state)
    try:
        with lab_writer("other", "up"):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_rollback_undoes_newest_first_and_goes_on_after_a_failure():
    done: list[str] = []
    txn = Transaction()
    txn.undo_with("a", "first", lambda: done.append("a"))

    def fails():
        done.append("b")
        raise RuntimeFailure("stubborn")

    txn.undo_with("b", "second", fails)
    txn.undo_with("c", "third", lambda: done.append("c"))
    txn.after_commit("d", "deferred", lambda: done.append("d"))
    events: list[tuple] = []
    failures = txn.rollback(lambda *e: events.append(e))
    assert done == ["c", "b", "a"]                    # newest first, and on past the failure
    assert failures == ["b: second: stubborn"]
    assert [e[1] for e in events] == ["c", "b", "a"]
    assert not txn.has_changes                          # deferred work is dropped, never run


def test_commit_runs_only_the_deferred_work():
    done: list[str] = []
    txn = Transaction()
    txn.undo_with("a", "undo", lambda: done.append("undo"))
    txn.after_commit("a", "remove old", lambda: done.append("remove"))
    txn.commit(lambda *e: None)
    assert done == ["remove"]
    assert txn.rollback(lambda *e: None) == [] and done == ["remove"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_stop_signal_raises_interrupted_with_the_shells_exit_code(signum):
    with pytest.raises(KeyboardInterrupt) as caught:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(2)   # the handler interrupts this
    assert isinstance(caught.value, Interrupted)
    assert caught.value.exit_code == 128 + signum
    assert signal.getsignal(signal.SIGTERM) is not None


def test_signals_while_shielded_only_print_a_notice_once():
    notices: list[str] = []
    finished = False
    with stop_on_signals():
        with shielded(lambda: notices.append("rolling back, please wait")):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            finished = True
    assert finished and notices == ["rolling back, please wait"]


def test_handlers_are_restored_afterwards():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
