#!/usr/bin/env python3
"""Soak test of the lab's lifecycle: up, edit, up, down, with random interruptions.

Each cycle runs the real `lab` command (as a user would) on a small lab:
  1. `lab up` (maybe interrupted by SIGINT, SIGTERM, SIGHUP or SIGKILL after a random delay),
  2. `lab up` again, which must succeed and leave every node ready,
  3. an edit (the app server's port toggles, a second client comes and goes), `lab up` (maybe
     interrupted), then `lab up` again, which must succeed,
  4. `lab down` (maybe interrupted; then `lab down` again), after which nothing with the lab's
     label may be left: no container, no helper, no network.
It reports, per cycle and in total, the failures (a command that should succeed did not, a
traceback, a node not ready) and the leaks (objects left after down); both must be 0.

Usage: python3 bench/soak.py [--cycles 50] [--topology minimal|default] [--seed N]
Not part of the default test run: 50 cycles of the minimal lab take about 15 minutes.
Traffic: none leaves the engine; the lab uses 198.19.0.0/16 and 100.64.0.0/10 only.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.plan.model import LABEL_LAB  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INTERRUPTIONS = [None, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]


def run_lab(args: list[str], interrupt: int | None, delay: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "lab", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    if interrupt is not None:
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(interrupt)
    output = process.communicate(timeout=600)[0]
    return process.returncode, output


def leftovers(client, lab: str) -> int:
    label = {"label": f"{LABEL_LAB}={lab}"}
    return (len(client.containers.list(all=True, filters=label, ignore_removed=True))
            + len(client.networks.list(filters=label)))


def topologies(name: str, lab: str) -> tuple[str, str]:
    text = (ROOT / "topology" / f"{name}.yaml").read_text()
    text = "\n".join(f"name: {lab}" if line.startswith("name:") else line for line in text.splitlines()) + "\n"
    edited = text.replace("nodes:\n", "nodes:\n  visitor:\n    kind: client\n    networks: [{}]\n".format(
        "lan" if name == "minimal" else "home"), 1)
    return text, edited


class Soak:
    def __init__(self, client, lab: str, files: list[Path], rng: random.Random):
        self.client, self.lab, self.files, self.rng = client, lab, files, rng
        self.failures: list[str] = []
        self.leaks = 0

    def step(self, cycle: int, args: list[str], may_interrupt: bool) -> bool:
        interrupt = self.rng.choice(INTERRUPTIONS) if may_interrupt else None
        delay = self.rng.uniform(0.5, 6.0)
        code, output = run_lab(args, interrupt, delay)
        if "Traceback" in output:
            self.failures.append(f"cycle {cycle}: `lab {' '.join(args)}` printed a traceback")
        if interrupt is None and code != 0:
            self.failures.append(f"cycle {cycle}: `lab {' '.join(args)}` exit {code}: {output.strip()[-300:]}")
        return code == 0

    def cycle(self, number: int) -> None:
        base, edited = self.files
        self.step(number, ["up", str(base)], may_interrupt=True)
        self.step(number, ["up", str(base)], may_interrupt=False)
        self.step(number, ["up", str(edited)], may_interrupt=True)
        self.step(number, ["up", str(edited)], may_interrupt=False)
        if not self.step(number, ["down", "--lab", self.lab], may_interrupt=True):
            self.step(number, ["down", str(base)], may_interrupt=False)
        left = leftovers(self.client, self.lab)
        if left:
            self.leaks += left
            self.failures.append(f"cycle {number}: {left} objects left after lab down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--topology", choices=["minimal", "default"], default="minimal")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    lab = "soak"
    client = connect()
    with tempfile.TemporaryDirectory() as directory:
        files = []
        for suffix, text in zip(("base", "edited"), topologies(args.topology, lab)):
            path = Path(directory) / f"{lab}-{suffix}.yaml"
            path.write_text(text)
            files.append(path)
        soak = Soak(client, lab, files, rng)
        started = time.monotonic()
        for number in range(1, args.cycles + 1):
            soak.cycle(number)
            print(f"cycle {number:>3}: failures so far {len(soak.failures)}, leaked objects {soak.leaks}",
                  flush=True)
    print(f"\n{'topology':<10} {'cycles':>6} {'seed':>12} {'failures':>9} {'leaks':>6} {'minutes':>8}")
    print(f"{args.topology:<10} {args.cycles:>6} {args.seed:>12} {len(soak.failures):>9} {soak.leaks:>6} "
          f"{(time.monotonic() - started) / 60:>8.1f}")
    for failure in soak.failures:
        print(f"  - {failure}")
    return 1 if soak.failures or soak.leaks else 0


if __name__ == "__main__":
    sys.exit(main())
