#!/usr/bin/env python3
"""How long `lab up` and `lab down` take, beside the engine's own floor.

For each topology it measures, in one run:
  - cold up: no lab images at all (the Debian base, every image and the lab built from nothing),
    only for the default topology and only with --cold (it deletes the lab's images);
  - warm up: images present, no containers;
  - down;
  - the floor: the same networks created, then the same number of plain containers (same images,
    same networks and addresses, `sleep infinity`) created and started in parallel with the same
    number of workers, then everything removed the way `lab down` removes (each container
    leaves its networks one at a time per network, which Docker 20.10's endpoint count
    needs), without the gentle stop.
The generated topologies (25, 50, 100 nodes) show how `lab up` grows with the size of a lab.

It also prints where each kind's start time goes (median per kind, from the engine's
own timestamps: the container's creation and start, and each lab-init log line).

Usage: python3 bench/up_down.py [--cold] [--sizes 25,50,100] [--repeat N] [--prefix NAME --shift N]
       python3 bench/up_down.py --sizes 100 --cycles 20   # up/down 20 times, counting failures
--repeat N measures warm up, down and the floor N times, one after the other, and prints their
medians and each pair's ratio (the floor alone moves by a tenth from one run to the next).
--prefix names the labs (NAME-default, NAME-gen-25...) and --shift N (1 to 7) moves their
subnets into 100.(100+N).x, 100.(110+N).x and 100.(120+N).x and its IPv6 prefixes into
fd6c:6182+N::/32, ranges no test uses, so a bench can share an engine with other labs and test runs.
Traffic: none leaves the engine; the labs use 198.18.0.0/15 and 100.64.0.0/10 only.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.errors import LabError  # noqa: E402
from lab.plan import make_plan  # noqa: E402
from lab.backends.docker import apply  # noqa: E402
from lab.backends.docker.apply import WORKERS  # noqa: E402
from lab.backends.docker.engine import connect  # noqa: E402
from lab.backends.docker.images import ensure_images  # noqa: E402
from lab.backends.docker.objects import create_network, remove_containers, remove_network  # noqa: E402
from lab.state import ensure_lab_state  # noqa: E402
from lab.topology import load_text  # noqa: E402
from tests.generated import generated_topology  # noqa: E402
from bench.start_phases import print_phases, start_phases  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IPV6_BENCH_OFFSET = 0x20   # bench labs use fd6c:6182+N::/32; test runs fd6c:6162+N::/32


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def floor(client, plan, images) -> tuple[float, float]:
    """Create networks and plain containers in parallel, start them; then remove everything."""
    made_networks, made = [], []

    def one(container_plan):
        networks = list(container_plan.addresses.items())
        container = client.containers.create(
            images[container_plan.kind], entrypoint=["sleep", "infinity"], command=[],
            name=f"floor-{container_plan.docker_name}", labels={"lab.bench": "floor"},
            network=networks[0][0],
            networking_config={networks[0][0]: client.api.create_endpoint_config(ipv4_address=networks[0][1])})
        for network, address in networks[1:]:
            client.networks.get(network).connect(container, ipv4_address=address)
        container.start()
        return container

    def create_all():
        made_networks.extend(create_network(client, n) for n in plan.networks)
        with ThreadPoolExecutor(WORKERS) as pool:
            made.extend(pool.map(one, plan.containers))

    def remove_all():
        remove_containers(made, None, WORKERS)   # as down does, minus the gentle stop
        for network in made_networks:
            remove_network(network)

    return timed(create_all), timed(remove_all)


def remove_lab_images(client) -> None:
    """Delete every lab/* image, children before parents (a parent cannot go first)."""
    import docker.errors

    for _ in range(10):
        left = [i for i in client.images.list() if any(t.startswith("lab/") for t in i.tags)]
        if not left:
            return
        for image in left:
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.APIError:
                pass  # a parent: removed in a later pass


def measure(client, name: str, text: str, cold: bool, repeat: int = 1) -> dict:
    lab = load_text(text, name)
    plan = make_plan(lab, ensure_lab_state(lab))
    row = {"topology": name, "nodes": len(plan.containers), "cold": None}
    if cold:
        apply.down(client, lab.name, volumes=True)
        remove_lab_images(client)
        row["cold"] = timed(lambda: apply.up(client, plan))
        apply.down(client, lab.name, volumes=True)
    images = ensure_images(client, sorted({c.kind for c in plan.containers}))
    ready_times: list[tuple[str, float]] = []
    ready_at: dict[str, float] = {}
    began = time.time()
    row["warm"] = timed(lambda: apply.up(client, plan, _ready_times(plan, ready_times, ready_at)))
    row["per_kind"] = ready_times
    row["phases"] = start_phases(client, plan, began, ready_at)
    row["unchanged"] = timed(lambda: apply.up(client, plan))
    row["down"] = timed(lambda: apply.down(client, lab.name, volumes=True))
    # Second floor: the real services, all started at once with no ordering at all.
    unordered = dataclasses.replace(plan, containers=tuple(dataclasses.replace(c, depends_on=())
                                                           for c in plan.containers))
    row["unordered"] = timed(lambda: apply.up(client, unordered))
    apply.down(client, lab.name, volumes=True)
    row["floor_up"], row["floor_down"] = floor(client, plan, images)
    if repeat > 1:   # more pairs of warm up and floor, one after the other: the medians
        ups, floors = [row["warm"]], [(row["floor_up"], row["floor_down"])]
        downs = [row["down"]]
        for _ in range(repeat - 1):
            ups.append(timed(lambda: apply.up(client, plan)))
            downs.append(timed(lambda: apply.down(client, lab.name, volumes=True)))
            floors.append(floor(client, plan, images))
        row["warm"], row["down"] = statistics.median(ups), statistics.median(downs)
        row["floor_up"] = statistics.median(f[0] for f in floors)
        row["floor_down"] = statistics.median(f[1] for f in floors)
        row["ratios"] = sorted(u / f[0] for u, f in zip(ups, floors))
    return row


def _ready_times(plan, into: list, ready_at: dict):
    """An events callback keeping (kind, seconds from start to ready) of each node, and the
    wall-clock time each node was seen ready."""
    kinds = {c.name: c.kind for c in plan.containers}

    def record(event: str, subject: str, detail: str) -> None:
        if event == "ready" and "ready in" in detail:
            ready_at[subject] = time.time()
            into.append((kinds.get(subject, "?"), float(detail.rsplit("ready in ", 1)[1].split()[0])))
    return record


def print_kinds(rows: list[dict]) -> None:
    """Where the seconds go: each kind's time from start to ready (median, max), per topology."""
    print(f"\n{'topology':<10} {'kind':<14} {'nodes':>5} {'median ready':>13} {'max ready':>10}")
    for row in rows:
        by_kind: dict[str, list[float]] = {}
        for kind, seconds in row["per_kind"]:
            by_kind.setdefault(kind, []).append(seconds)
        for kind, times in sorted(by_kind.items()):
            print(f"{row['topology']:<10} {kind:<14} {len(times):>5} {statistics.median(times):>13.2f} "
                  f"{max(times):>10.2f}")


def print_table(rows: list[dict]) -> None:
    def seconds(value):
        return "-" if value is None else f"{value:6.1f}"

    header = (f"{'topology':<10} {'nodes':>5} {'cold up':>8} {'warm up':>8} {'unordered':>9} {'floor up':>9} {'ratio':>6} "
              f"{'no-op up':>9} {'down':>6} {'floor down':>11} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['topology']:<10} {row['nodes']:>5} {seconds(row['cold']):>8} {seconds(row['warm']):>8} "
              f"{seconds(row['unordered']):>9} "
              f"{seconds(row['floor_up']):>9} {row['warm'] / row['floor_up']:>5.1f}x {seconds(row['unchanged']):>9} "
              f"{seconds(row['down']):>6} {seconds(row['floor_down']):>11} {row['down'] / row['floor_down']:>5.1f}x")
    for row in rows:
        if row.get("ratios"):
            print(f"{row['topology']}: {len(row['ratios'])} pairs of warm up and floor, one after the other; the "
                  f"table shows medians; each pair's ratio: {', '.join(f'{r:.2f}' for r in row['ratios'])}")
    print("\nseconds; ratio = warm up / floor up, down / floor down. Unordered: the same nodes with "
          "no dependencies at all, all started at once (the best any ordering could do).")
    print("Cold up includes making the Debian base image and building "
          "every image.\nFloor: the same networks and number of containers from the same images, "
          f"plain `sleep infinity`, {WORKERS} workers.")


def renamed(text: str, name: str, shift: int) -> str:
    """The topology under another lab name, its subnets moved into ranges no test uses."""
    text = re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
    if not shift:
        return text
    # Each range moves to a /16 of 100.64.0.0/10 that no test uses (at any shift).
    moved = {"198.19": 100 + shift, "198.18": 110 + shift, "100.64": 120 + shift}
    text = re.sub(r"\b(100\.64|198\.18|198\.19)\.(\d+)\.", lambda m: f"100.{moved[m.group(1)]}.{m.group(2)}.", text)
    # The IPv6 prefixes (fd6c:6162::/32) move too, past the ones test shifts use (6162+N).
    return re.sub(r"\bfd6c:6162:", f"fd6c:{0x6162 + IPV6_BENCH_OFFSET + shift:x}:", text)


def cycles(client, size: int, count: int, prefix: str, shift: int) -> None:
    """Up and down of one generated lab, count times: every failure counts (the engine's
    endpoint race shows here, if removal ever trips it)."""
    lab = load_text(renamed(generated_topology(size), f"{prefix}-gen-{size}", shift), f"gen-{size}")
    plan = make_plan(lab, ensure_lab_state(lab))
    failures, ups, downs = [], [], []
    for number in range(1, count + 1):
        try:
            ups.append(timed(lambda: apply.up(client, plan)))
            downs.append(timed(lambda: apply.down(client, lab.name, volumes=True)))
        except LabError as error:
            failures.append(f"cycle {number}: {str(error).splitlines()[0]}")
            apply.down(client, lab.name, volumes=True)
        print(f"  cycle {number}: {len(failures)} failures", file=sys.stderr)
    print(f"{'topology':<10} {'nodes':>5} {'cycles':>6} {'failures':>8} {'median up':>10} {'median down':>12}")
    print(f"gen-{size:<6} {len(plan.containers):>5} {count:>6} {len(failures):>8} "
          f"{statistics.median(ups or [0]):>10.1f} {statistics.median(downs or [0]):>12.1f}")
    for failure in failures:
        print(f"  - {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also measure a cold up (deletes the lab images)")
    parser.add_argument("--sizes", default="25,50,100", help="generated topology sizes")
    parser.add_argument("--cycles", type=int, default=0,
                        help="instead of the table: up and down the largest size this many times, counting failures")
    parser.add_argument("--prefix", default="bench", help="lab names start with this")
    parser.add_argument("--shift", type=int, default=0, help="move the labs' subnets into 100.(100+N).x, 100.(110+N).x, 100.(120+N).x")
    parser.add_argument("--no-default", action="store_true", help="only the generated sizes")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure warm up, down and the floor this many times (alternating), print medians")
    args = parser.parse_args()
    client = connect(timeout=600)
    if args.cycles:
        cycles(client, max(int(s) for s in args.sizes.split(",") if s), args.cycles, args.prefix, args.shift)
        return
    rows = []
    if not args.no_default:
        text = renamed((ROOT / "topology" / "default.yaml").read_text(), f"{args.prefix}-default", args.shift)
        rows.append(measure(client, "default", text, args.cold, args.repeat))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        text = renamed(generated_topology(size), f"{args.prefix}-gen-{size}", args.shift)
        rows.append(measure(client, f"gen-{size}", text, False, args.repeat))
        print(f"  measured {size} nodes", file=sys.stderr)
    print_table(rows)
    print_kinds(rows)
    print_phases(rows)


if __name__ == "__main__":
    main()
