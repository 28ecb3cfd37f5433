"""Where each node's start time goes, read after a `lab up` from the engine's own clocks.

For each node, from observed timestamps (same host clock):
  wait     the run's start -> the container created (waiting for its dependencies, and a worker)
  engine   created -> its process started (State.StartedAt: networks attached, start)
  init     started -> lab-init's first log line (tini, the shell, /lab/env)
  routes   lab-init's first line -> its routes in place (the runtime's, or its own)
  rest     routes -> lab-init done (resolver, firewall, the lab CA)
  service  lab-init done -> `lab up` saw the probe pass (the service's own start, plus the
           polling: the probe is retried inside the node, at most readiness.MAX_POLL_SECONDS apart)
  probe    one run of the kind's probe on the ready node (an exec round trip), measured after
  cpu      CPU-seconds the node's container had used when `lab up` ended (lab-init, the service's
           start, the probes run inside it): unlike the times, it hardly moves with the load
           other programs put on the machine, so it compares two versions on a busy machine
Log times are the engine's (`docker logs --timestamps`); lab-init's lines are in every image.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from lab.backends.docker.objects import probe_command

PHASES = ("wait", "engine", "init", "routes", "rest", "service")


def _when(text: str) -> float:
    """Seconds since the epoch from the engine's RFC 3339 time (nanoseconds cut to micro)."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, tail = text.split(".", 1)
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]:0<6}{zone}"
    return datetime.fromisoformat(text).timestamp()


def _log_times(container) -> dict[str, float]:
    """When lab-init began, had its routes and ended, from the node's timestamped log."""
    times: dict[str, float] = {}
    lines = container.logs(timestamps=True, stdout=True, stderr=True).decode(errors="replace").splitlines()
    for line in lines:
        stamp, _, message = line.partition(" ")
        if not message.startswith("lab-init: "):
            continue
        at = _when(stamp)
        times.setdefault("init", at)
        if message.startswith(("lab-init: routes installed", "lab-init: route ", "lab-init: no /lab/routes")):
            times["routes"] = at
        if message.startswith("lab-init: done"):
            times.setdefault("done", at)
    return times


def _node_phases(container, began: float, ready: float) -> dict[str, float] | None:
    attrs = container.attrs
    logs = _log_times(container)
    if "init" not in logs or "done" not in logs:
        return None
    created, started = _when(attrs["Created"]), _when(attrs["State"]["StartedAt"])
    routes = logs.get("routes", logs["init"])
    return {"wait": created - began, "engine": started - created, "init": logs["init"] - started,
            "routes": routes - logs["init"], "rest": logs["done"] - routes, "service": ready - logs["done"]}


def _probe_seconds(container) -> float:
    command = probe_command(container)
    started = time.monotonic()
    if command:
        container.exec_run(command)
    return time.monotonic() - started


def _cpu_seconds(client, names: list[str]) -> dict[str, float]:
    """CPU-seconds each container has used so far (one-shot stats, read in parallel)."""
    def one(name: str) -> float:
        stats = client.api.stats(name, stream=False, one_shot=True)
        return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    with ThreadPoolExecutor(16) as pool:
        return dict(zip(names, pool.map(one, names)))


def start_phases(client, plan, began: float, ready_at: dict[str, float]) -> dict[str, dict]:
    """Per kind: node count and the median of each phase (seconds), one probe's cost, and the
    median CPU-seconds a node used to start (read first, before anything else runs in it)."""
    nodes = [node for node in plan.containers if node.name in ready_at]
    cpu = _cpu_seconds(client, [node.docker_name for node in nodes])
    by_kind: dict[str, list[dict]] = {}
    probes: dict[str, list[float]] = {}
    for node in nodes:
        container = client.containers.get(node.docker_name)
        phases = _node_phases(container, began, ready_at[node.name])
        if phases is None:
            continue
        by_kind.setdefault(node.kind, []).append({**phases, "cpu": cpu[node.docker_name]})
        if len(probes.setdefault(node.kind, [])) < 3:
            probes[node.kind].append(_probe_seconds(container))
    return {kind: {"nodes": len(rows), **{p: statistics.median(r[p] for r in rows) for p in (*PHASES, "cpu")},
                   "probe": statistics.median(probes[kind])}
            for kind, rows in by_kind.items()}


def print_phases(rows: list[dict]) -> None:
    print("\nwhere a node's start goes (median seconds per kind; see bench/start_phases.py):")
    header = f"{'topology':<9} {'kind':<13} {'n':>3}" + "".join(f" {p:>6}" for p in PHASES) + f" {'probe':>6} {'cpu':>6}"
    print(header)
    for row in rows:
        for kind, values in sorted(row.get("phases", {}).items()):
            print(f"{row['topology']:<9} {kind:<13} {values['nodes']:>3}"
                  + "".join(f" {values[p]:>6.2f}" for p in PHASES) + f" {values['probe']:>6.2f} {values['cpu']:>6.2f}")
