"""Routing timings of the internet topology, run by hand (not part of the test suite).

    PYTHONPATH=. python3 bench/routing.py [--name bench-internet] [--shift N] [--cycles 3]

Brings topology/internet.yaml up (renamed; subnets moved by 40*N in the third octet, as
the tests do), and measures, reading FRR at each poll (lab/routing/watch.py):
- from the start of `lab up` to every BGP session established (both families: the lab is
  dual-stack, one session per family);
- after `lab link down site-router link-shop-a`: until isp-a-edge's best path toward the
  shop goes through ISP B (the backup), then after `link up` until it is back on ISP A,
  for IPv4 (toward lb's IPv4 address) and IPv6 (toward its IPv6 address) separately, both
  timed from the same moment.
Each time is an upper bound by one poll (0.2 s plus one vtysh call). The lab is removed at
the end, whatever happens. Prints the load average beside the figures: on a shared machine
they mean little without it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lab.backends.docker import apply  # noqa: E402
from lab.backends.docker.backend import DockerBackend  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402
from lab.plan import make_plan  # noqa: E402
from lab.routing.watch import best_as_path, wait_for_each, wait_for_sessions  # noqa: E402
from lab.state import ensure_lab_state  # noqa: E402
from lab.topology import load_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ISP_A, ISP_B, SHOP = 64601, 64602, 64700


def topology(name: str, shift: int) -> str:
    text = (ROOT / "topology" / "internet.yaml").read_text().replace("name: internet", f"name: {name}", 1)
    pattern = re.compile(r"\b(100\.64|198\.18)\.(\d+)\.")
    text = pattern.sub(lambda m: f"{m.group(1)}.{int(m.group(2)) + 40 * shift}.", text)
    return re.sub(r"\bfd6c:6162:", f"fd6c:{0x6162 + shift:x}:", text)   # as the tests shift IPv6


def _paths(backend: DockerBackend, lab, lbs: dict, wanted) -> dict:
    return {f"IPv{family}": (lambda lb=lb: wanted(best_as_path(backend, lab, "isp-a-edge", lb)))
            for family, lb in lbs.items()}


def failover_cycle(backend: DockerBackend, lab, lbs: dict) -> tuple[dict, dict]:
    """({family: seconds to the backup}, {family: seconds back on the primary})."""
    backend.set_link(lab.name, "site-router", "link-shop-a", up=False)
    try:
        down = wait_for_each(_paths(backend, lab, lbs, lambda p: bool(p) and ISP_B in p), 60, "failover")
    finally:
        backend.set_link(lab.name, "site-router", "link-shop-a", up=True)
    back = wait_for_each(_paths(backend, lab, lbs, lambda p: p == (ISP_A, SHOP)), 120, "recovery")
    return down, back


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="bench-internet")
    parser.add_argument("--shift", type=int, default=0)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    client = connect()
    lab = load_text(topology(args.name, args.shift), "<bench>")
    backend = DockerBackend(client)
    try:
        started = time.monotonic()
        apply.up(client, make_plan(lab, ensure_lab_state(lab)))
        up_done = time.monotonic() - started
        extra = wait_for_sessions(backend, lab)
        print(f"lab up: {up_done:.1f} s; all BGP sessions (IPv4 and IPv6) established {up_done + extra:.1f} s "
              f"after the start (load average {os.getloadavg()[0]:.1f})")
        lbs = {4: lab.instance("lb").first_address, 6: lab.instance("lb").first_address6}
        for family, lb in lbs.items():
            print(f"isp-a-edge's AS path toward lb over IPv{family}: {best_as_path(backend, lab, 'isp-a-edge', lb)}")
        downs, backs = {f"IPv{f}": [] for f in lbs}, {f"IPv{f}": [] for f in lbs}
        for cycle in range(1, args.cycles + 1):
            down, back = failover_cycle(backend, lab, lbs)
            for family in downs:
                downs[family].append(down[family])
                backs[family].append(back[family])
            said = "; ".join(f"{f} to the backup {down[f]:.2f} s, back {back[f]:.2f} s" for f in downs)
            print(f"cycle {cycle}: {said} (load average {os.getloadavg()[0]:.1f})")
        for family in downs:
            print(f"median {family}: failover {statistics.median(downs[family]):.2f} s, "
                  f"recovery {statistics.median(backs[family]):.2f} s")
    finally:
        apply.down(client, lab.name, volumes=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
