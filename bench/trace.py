#!/usr/bin/env python3
"""The cost of tracing: `lab trace`'s client-measured total beside a bare curl of the same URL.

Both run from the same client node of a running lab, with a warm DNS cache, one
after the other, N times; the table shows the median and the 90th percentile
of each and their ratio. `lab trace` collects its evidence (resolver packets,
firewall counters, logs) around the request, so that work is not in the
client's total; the request itself must cost within 20% of a bare curl.

Usage: python3 bench/trace.py [--lab NAME] [--file TOPOLOGY] [--url URL] [--runs 20]
Needs a running lab (lab up). Traffic stays inside the lab.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.backends import open_backend  # noqa: E402
from lab.topology import load_topology  # noqa: E402
from lab.trace.journey import default_client, trace_url  # noqa: E402


def bare_curl_ms(backend, lab, node: str, url: str) -> float:
    result = backend.exec(lab.name, node, ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url])
    if result.code != 0:
        raise SystemExit(f"curl {url} from {node} failed: {result.output}")
    return float(result.stdout) * 1000


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default="topology/default.yaml")
    parser.add_argument("--url", default="https://www.shop.test/")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    backend = open_backend()
    lab = load_topology(args.file)
    node = default_client(lab)
    bare_curl_ms(backend, lab, node, args.url)      # warm the DNS cache and the connections' paths
    traced, bare = [], []
    for _ in range(args.runs):
        bare.append(bare_curl_ms(backend, lab, node, args.url))
        result = trace_url(backend, lab, args.url, node)
        if not result.ok:
            raise SystemExit(f"the trace failed: {result.summary}")
        traced.append(result.total_ms)
    rows = [("bare curl", bare), ("lab trace (client total)", traced)]
    print(f"{args.url} from {node} in lab {lab.name}, {args.runs} runs each, warm DNS\n")
    print(f"{'':<26} {'median ms':>10} {'p90 ms':>8}")
    for name, values in rows:
        print(f"{name:<26} {statistics.median(values):>10.1f} {percentile(values, 0.9):>8.1f}")
    ratio = statistics.median(traced) / statistics.median(bare)
    verdict = "within" if ratio <= 1.2 else "NOT within"
    print(f"\nratio of medians: {ratio:.2f} ({verdict} 20% of a bare curl)")


if __name__ == "__main__":
    main()
