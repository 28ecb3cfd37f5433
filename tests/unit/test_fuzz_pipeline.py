"""Fuzz: mutants of valid files go through validate, plan, graph and export without any
exception but the project's own. Fixed seed and a bounded number of examples, so the
suite stays fast and repeatable; bench/fuzz_topology.py runs the same for longer."""

from hypothesis import HealthCheck, given, seed, settings

from tests.mutants import VALID, mutants, run_pipeline


def test_the_unmutated_files_are_valid():
    assert [run_pipeline(text) for text in VALID] == ["valid"] * len(VALID)


@seed(14)
@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutants())
def test_mutants_end_in_a_lab_or_a_topology_error(text):
    assert run_pipeline(text) in ("valid", "invalid")
