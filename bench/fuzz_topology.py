"""Long fuzz of the topology pipeline, run by hand (not part of the test suite).

    PYTHONPATH=. python3 bench/fuzz_topology.py [--examples N] [--seed S] [--save DIR]

Draws N mutants of the valid topologies (tests/mutants.py: odd values, YAML 1.1
traps, hostile YAML spliced in) and runs each through validate, plan, graph and
export. Unlike the suite's fuzz test it does not stop at the first failure: it
counts outcomes, groups failures by exception type and place, saves one file
per group under --save, and reports the slowest case. Exit 1 if anything
failed, or if one case took more than 2 s.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.mutants import mutants, run_pipeline  # noqa: E402

SLOW_SECONDS = 2.0


def fuzz(examples: int, seed_value: int) -> tuple[Counter, dict, tuple[float, str]]:
    outcomes: Counter = Counter()
    failures: dict[str, tuple[str, str]] = {}
    slowest = (0.0, "")

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutants())
    def one(text: str) -> None:
        nonlocal slowest
        started = time.perf_counter()
        try:
            outcomes[run_pipeline(text)] += 1
        except Exception as error:  # noqa: BLE001 - the point is to catch every bug
            place = traceback.extract_tb(error.__traceback__)[-1]
            key = f"{type(error).__name__} at {Path(place.filename).name}:{place.lineno}"
            failures.setdefault(key, (text, traceback.format_exc()))
            outcomes["failed"] += 1
        elapsed = time.perf_counter() - started
        if elapsed > slowest[0]:
            slowest = (elapsed, text)

    one()
    return outcomes, failures, slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--save", type=Path, default=Path("fuzz-failures"))
    args = parser.parse_args()
    started = time.perf_counter()
    outcomes, failures, (slow_time, slow_text) = fuzz(args.examples, args.seed)
    total = time.perf_counter() - started
    print(f"seed {args.seed}: {sum(outcomes.values())} mutants in {total:.0f} s "
          f"({sum(outcomes.values()) / total:.0f}/s): {dict(outcomes)}")
    print(f"slowest case: {slow_time:.2f} s")
    for index, (key, (text, trace)) in enumerate(sorted(failures.items())):
        args.save.mkdir(parents=True, exist_ok=True)
        path = args.save / f"failure-{index}.yaml"
        path.write_text(text, errors="surrogateescape")
        print(f"FAILED {key}: {path}\n{trace.splitlines()[-1]}")
    return 1 if failures or slow_time > SLOW_SECONDS else 0


if __name__ == "__main__":
    sys.exit(main())
