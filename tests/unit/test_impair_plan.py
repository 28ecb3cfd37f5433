"""The tc commands `lab impair` runs, and the values it refuses, without an engine."""

from __future__ import annotations

import pytest

from lab.errors import UsageError
from lab.impair import Impairment, check_values, tc_script


def test_a_rate_alone_is_a_tbf_at_the_root_with_a_burst_of_10_ms():
    script = tc_script(Impairment(rate="8mbit"))
    assert 'tc qdisc add dev "$DEV" root tbf rate 8mbit burst 10000 latency 200ms' in script
    assert "netem" not in script


def test_netem_goes_at_the_root_with_tbf_under_it():
    script = tc_script(Impairment(rate="1mbit", delay="50ms", jitter="5ms", loss="1%"))
    assert 'root handle 1: netem delay 50ms 5ms loss 1%' in script
    assert 'parent 1:1 handle 10: tbf rate 1mbit burst 3200' in script


def test_an_empty_impairment_only_clears():
    assert tc_script(Impairment()).splitlines() == ['tc qdisc del dev "$DEV" root 2>/dev/null || true']
    assert Impairment().empty and not Impairment(jitter="5ms").empty


@pytest.mark.parametrize("impairment, words", [
    (Impairment(rate="2 mbit"), "--rate 2 mbit"),
    (Impairment(delay="50"), "--delay 50"),
    (Impairment(loss="0.5"), "--loss 0.5"),
    (Impairment(jitter="5ms"), "--jitter needs --delay"),
])
def test_values_tc_would_misread_are_refused(impairment, words):
    with pytest.raises(UsageError) as caught:
        check_values(impairment)
    assert words in str(caught.value)
