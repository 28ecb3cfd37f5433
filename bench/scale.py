#!/usr/bin/env python3
"""One big generated lab: how long `lab up` takes, nodes per second, and what an idle node
of each kind costs in memory (the engine's stats), then `lab down`.

Usage: python3 bench/scale.py [--nodes 500] [--app-every 10] [--prefix bench --shift 0]
The lab is a chain of networks joined by routers, filled with clients and (one host in
--app-every) app servers. Memory is the engine's figure for a container (usage minus page
cache, as `docker stats` shows it), sampled on up to --sample nodes of each kind after
--settle seconds idle. Failures are counted, not hidden: a failed up is reported and the
lab removed. Traffic: none leaves the engine (the lab's own subnets only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.errors import LabError  # noqa: E402
from lab.plan import make_plan  # noqa: E402
from lab.backends.docker import apply  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402
from lab.state import ensure_lab_state  # noqa: E402
from lab.topology import load_text  # noqa: E402
from tests.generated import generated_topology  # noqa: E402
from bench.up_down import renamed  # noqa: E402


def idle_memory(container) -> float:
    """MiB, as `docker stats` computes it on cgroup v1 (usage minus cache) or v2 (minus inactive_file)."""
    stats = container.stats(stream=False).get("memory_stats", {})
    usage = stats.get("usage", 0)
    detail = stats.get("stats", {})
    return (usage - detail.get("cache", detail.get("inactive_file", 0))) / 2**20


def memory_by_kind(client, plan, sample: int) -> dict[str, list[float]]:
    chosen: dict[str, list] = {}
    for node in plan.containers:
        if len(chosen.setdefault(node.kind, [])) < sample:
            chosen[node.kind].append(node.docker_name)
    with ThreadPoolExecutor(8) as pool:
        return {kind: list(pool.map(lambda name: idle_memory(client.containers.get(name)), names))
                for kind, names in chosen.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--app-every", type=int, default=10)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--shift", type=int, default=0)
    parser.add_argument("--sample", type=int, default=8, help="nodes of each kind whose memory is read")
    parser.add_argument("--settle", type=float, default=20, help="seconds idle before reading memory")
    args = parser.parse_args()
    client = connect(timeout=900)
    text = renamed(generated_topology(args.nodes, args.app_every), f"{args.prefix}-gen-{args.nodes}", args.shift)
    lab = load_text(text, f"gen-{args.nodes}")
    plan = make_plan(lab, ensure_lab_state(lab))
    kinds = {kind: sum(1 for c in plan.containers if c.kind == kind) for kind in sorted({c.kind for c in plan.containers})}
    print(f"lab {lab.name}: {len(plan.containers)} nodes ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    started = time.monotonic()
    try:
        apply.up(client, plan)
    except LabError as error:
        print(f"up FAILED after {time.monotonic() - started:.1f} s: {str(error).splitlines()[0]}")
        apply.down(client, lab.name, volumes=True)
        return 1
    seconds = time.monotonic() - started
    print(f"up: {seconds:.1f} s, {len(plan.containers) / seconds:.2f} nodes/s")
    time.sleep(args.settle)
    print(f"{'kind':<14} {'nodes':>5} {'sampled':>7} {'median MiB':>10} {'max MiB':>8}")
    for kind, values in memory_by_kind(client, plan, args.sample).items():
        print(f"{kind:<14} {kinds[kind]:>5} {len(values):>7} {statistics.median(values):>10.1f} {max(values):>8.1f}")
    started = time.monotonic()
    apply.down(client, lab.name, volumes=True)
    print(f"down: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
