#!/usr/bin/env python3
"""The cost of watching a page load: `lab browse` beside the same load without the lab's instrumentation.

Each run loads the page cold (a fresh browser profile) in the browser helper inside the
client node:

- with the journey: as `lab browse` does it by default (the resolver's and the node's DNS
  caches emptied first, tcpdump on the client, routers and firewall, the firewall's counters,
  DevTools Network events for every request, the resolver capturing, the logs read afterwards);
- --no-journey: the same without emptying the caches or recording the path (OS DNS cache warm);
- bare: the same helper and driver with no Network domain enabled and nothing recorded
  around it: only the page's own Navigation Timing.

The page's time is the browser's own loadEventEnd (Navigation Timing) in both; the table
shows the medians and their ratio, and the wall time of each whole run (helper start,
Chromium start, load, evidence) for scale.

Usage: python3 bench/browse.py [--lab NAME] [--file TOPOLOGY] [--url URL] [--runs 5]
Needs a running lab (lab up). Traffic stays inside the lab.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.backends import open_backend  # noqa: E402
from lab.browse.run import CHROMIUM_FLAGS, _files_for, interpret, record  # noqa: E402
from lab.topology import load_topology  # noqa: E402
from lab.trace.journey import default_client  # noqa: E402


def instrumented(backend, lab, node: str, url: str, journey: bool = False) -> tuple[float, float]:
    started = time.monotonic()
    result = interpret(record(backend, lab, url, node, journey=journey), lab)
    wall = time.monotonic() - started
    if not result.ok:
        raise SystemExit(f"lab browse {url} failed: {result.error or 'a request failed'}")
    return result.visits[0].navigation["loadEventEnd"], wall


def bare(backend, lab, node: str, url: str) -> tuple[float, float]:
    started = time.monotonic()
    run = backend.run_browser(lab.name, node, [*CHROMIUM_FLAGS, "--bare", url], _files_for(backend, lab.name, node))
    wall = time.monotonic() - started
    navigation = next((json.loads(line)["navigation"] for line in run.stdout.splitlines()
                       if line.startswith('{"navigation"')), None)
    if run.code != 0 or not navigation:
        raise SystemExit(f"the bare load of {url} failed: {run.stderr[-300:]}")
    return navigation["loadEventEnd"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default="topology/default.yaml")
    parser.add_argument("--url", default="https://www.shop.test/")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    backend = open_backend()
    lab = load_topology(args.file)
    node = default_client(lab)
    bare(backend, lab, node, args.url)   # the image built, the OS DNS cache and the servers warm
    plain, journey, floor_name = "lab browse --no-journey", "lab browse (with the journey)", "bare (Navigation Timing only)"
    rows = {floor_name: [], plain: [], journey: []}
    for _ in range(args.runs):   # interleaved: a slow moment of the machine hits all three
        rows[floor_name].append(bare(backend, lab, node, args.url))
        rows[plain].append(instrumented(backend, lab, node, args.url))
        rows[journey].append(instrumented(backend, lab, node, args.url, journey=True))
    print(f"{args.url} from {node} in lab {lab.name}: {args.runs} cold loads each (a fresh browser profile); "
          f"load average {os.getloadavg()[0]:.2f}")
    print("bare and --no-journey: the OS DNS cache warm; with the journey the resolver's and the OS's DNS\n"
          "caches are emptied first (its name lookup goes to root, TLD and authoritative)\n")
    print(f"{'':<31} {'loadEventEnd ms':>16} {'whole run s':>12}")
    medians = {}
    for name, values in rows.items():
        medians[name] = statistics.median(v[0] for v in values)
        print(f"{name:<31} {medians[name]:>16.1f} {statistics.median(v[1] for v in values):>12.2f}")
    floor = medians[floor_name]
    print(f"\nratio --no-journey / bare (page load): {medians[plain] / floor:.2f}")
    print(f"ratio with the journey / bare (page load): {medians[journey] / floor:.2f}")


if __name__ == "__main__":
    main()
