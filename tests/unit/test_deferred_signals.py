"""A stop signal within deferred_signals() is raised only where the block checks for it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from lab.interrupts import Interrupted, deferred_signals, stop_on_signals


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
