#!/usr/bin/env python3
"""What `lab up` and `lab down` ask of the engine, in counts a busy machine does not change.

For each topology it runs, in order: a warm up (images present, no containers), a no-op
up, a down, and prints per operation the engine requests by shape (GET
/containers/:id/json is one shape, whatever the container), the execs, and the CPU
seconds of this process (the lab's own Python). Wall seconds are printed too, but they
depend on the machine's load; the counts do not.

Usage: python3 bench/engine_calls.py [--sizes 25,50] [--no-default] [--prefix bench --shift N]
        [--top 8]
--prefix and --shift as in bench/up_down.py (labs NAME-default, NAME-gen-25..., subnets
moved to ranges no test uses). Traffic: none leaves the engine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.backends.docker import apply  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402
from lab.backends.docker.images import ensure_images  # noqa: E402
from lab.plan import make_plan  # noqa: E402
from lab.state import ensure_lab_state  # noqa: E402
from lab.topology import load_text  # noqa: E402
from tests.engine_requests import counted  # noqa: E402
from tests.generated import generated_topology  # noqa: E402
from bench.up_down import renamed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(client, action) -> dict:
    cpu, began = _cpu(), time.monotonic()
    with counted(client) as log:
        action()
    return {"wall": time.monotonic() - began, "cpu": _cpu() - cpu, "log": log}


def operations(client, name: str, text: str) -> list[tuple[str, dict]]:
    lab = load_text(text, name)
    plan = make_plan(lab, ensure_lab_state(lab))
    ensure_images(client, sorted({c.kind for c in plan.containers}))
    apply.down(client, lab.name, volumes=True)
    rows = [("up", measured(client, lambda: apply.up(client, plan)))]
    rows.append(("no-op up", measured(client, lambda: apply.up(client, plan))))
    rows.append(("down", measured(client, lambda: apply.down(client, lab.name, volumes=True))))
    return [(f"{name} ({len(plan.containers)} nodes) {op}", row) for op, row in rows]


def print_rows(rows: list[tuple[str, dict]], top: int) -> None:
    print(f"{'operation':<32} {'requests':>8} {'per node':>8} {'execs':>6} {'lab CPU s':>9} {'wall s':>7}")
    for title, row in rows:
        log = row["log"]
        nodes = int(title.split("(")[1].split()[0])
        execs = log.counts()["POST /containers/:id/exec"]
        print(f"{title:<32} {len(log.shapes):>8} {len(log.shapes) / nodes:>8.1f} {execs:>6} "
              f"{row['cpu']:>9.2f} {row['wall']:>7.1f}")
    print("\nmost frequent request shapes:")
    for title, row in rows:
        shapes = ", ".join(f"{n} {shape}" for shape, n in row["log"].counts().most_common(top))
        print(f"  {title}: {shapes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25", help="generated topology sizes")
    parser.add_argument("--no-default", action="store_true", help="only the generated sizes")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--shift", type=int, default=0)
    parser.add_argument("--top", type=int, default=8, help="request shapes shown per operation")
    args = parser.parse_args()
    client = connect(timeout=600)
    rows = []
    if not args.no_default:
        text = renamed((ROOT / "topology" / "default.yaml").read_text(), f"{args.prefix}-default", args.shift)
        rows += operations(client, "default", text)
    for size in [int(s) for s in args.sizes.split(",") if s]:
        text = renamed(generated_topology(size), f"{args.prefix}-gen-{size}", args.shift)
        rows += operations(client, f"gen-{size}", text)
    print_rows(rows, args.top)


if __name__ == "__main__":
    main()
