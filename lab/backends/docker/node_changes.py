"""The change `lab up` makes to one node, each recorded with its undo.

Decisions compare a planned container with what runs: `create`, `recreate`
(its config hash changed, or a killed run left it half made), `reload` (only its
live files changed), `start` (stopped) or `keep`. A kept node is trusted when the
lab's ledger (ledger.py) says the last run ended with it ready; otherwise (after a
killed run it may be running without its routes) it is probed, and repaired (routes
installed again) or, if that does not make it ready, recreated.

A recreated node's old container is stopped and renamed aside, not removed,
until its successor passes its probe; a rollback removes the successor and
starts the old one again under its own name (same container, same id).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import docker

from lab.plan import ContainerPlan
from lab.plan.model import LABEL_HASH, LIVE_HASH_FILE, Probe
from lab.backends.docker.engine import NodeFailed, engine_call, run_command
from lab.backends.docker.netns import RouteInstaller, with_routes_check
from lab.backends.docker.objects import (RETIRED_SUFFIX, create_container, ensure_volume, probe_command,
                                 put_lab_files, read_lab_file, remove_container, rename_container,
                                 stop_gently)
from lab.backends.protocol import UpReport
from lab.backends.docker.readiness import probe_passes, start_and_wait, wait_until_ready
from lab.backends.docker.transaction import Events, Transaction

REPAIR_TIMEOUT = 20.0   # a kept node that fails its probe gets this long to recover


@dataclass
class NodeChange:
    """Everything a worker needs to change one node, and where to record it."""

    client: docker.DockerClient
    lab: str
    txn: Transaction
    report: UpReport
    events: Events
    cancel: threading.Event
    routes: RouteInstaller
    trusted: set[str] = field(default_factory=set)   # nodes the lab's ledger vouches for (ledger.py)
    report_lock: threading.Lock = field(default_factory=threading.Lock)
    retired: set[str] = field(default_factory=set)   # nodes whose old container is already aside

    def note(self, bucket: str, node: str, detail: str) -> None:
        with self.report_lock:
            getattr(self.report, bucket).append(node)
        self.events("ready", node, detail)


def _attached_networks(container) -> set[str]:
    return set((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})


def held_addresses(container) -> set[tuple[str, str]]:
    """(network, address) pairs a container holds, running or stopped (its static addresses)."""
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return {(name, (info.get("IPAMConfig") or {}).get("IPv4Address") or info.get("IPAddress") or "")
            for name, info in networks.items()}


def decide(plan: ContainerPlan, existing, config_hash: str, recorded_live: str | None = None) -> str:
    """recorded_live: the node's live-file hash as the lab's ledger has it (ledger.py); None:
    read it from the node."""
    if existing is None:
        return "create"
    if existing.labels.get(LABEL_HASH) != config_hash:
        return "recreate"
    if existing.status == "created":   # the engine's word for never started
        # Made by a run killed before it finished making it: its files (secrets among them) go
        # in after the engine's create, so its label can be right and its password missing.
        # A container never started holds nothing worth keeping (its data volume is kept).
        return "recreate"
    if not set(plan.addresses) <= _attached_networks(existing):
        return "recreate"   # made by a run killed before it attached every network
    live = recorded_live if recorded_live is not None else read_lab_file(existing, LIVE_HASH_FILE).strip()
    if live != plan.live_hash():
        return "reload" if existing.status == "running" else "recreate"
    return "keep" if existing.status == "running" else "start"


def restart_previous(change: NodeChange, container, node: str) -> Callable[[], None]:
    def restart() -> None:
        probe = Probe(tuple(probe_command(container)), 120, "its readiness probe")
        start_and_wait(change.routes, container, node, probe)
    return restart


def _create_new(change: NodeChange, plan: ContainerPlan, image: str, config_hash: str) -> float:
    for volume in plan.volumes:
        if ensure_volume(change.client, volume, change.lab):
            change.txn.undo_with(plan.name, f"deleting volume {volume} made by this run",
                                 lambda v=volume: change.client.volumes.get(v).remove(force=True))
    container = create_container(change.client, plan, image, config_hash)
    change.txn.undo_with(plan.name, "removing the container made by this run",
                         lambda: remove_container(container))
    return start_and_wait(change.routes, container, plan.name, plan.probe, change.cancel)


def retire(change: NodeChange, plan: ContainerPlan, old) -> None:
    """Stop the old container and move it aside, so its successor can take its name and addresses."""
    stop_gently(old)
    change.txn.undo_with(plan.name, "starting the previous container again", restart_previous(change, old, plan.name))
    rename_container(old, plan.docker_name + RETIRED_SUFFIX)
    change.txn.undo_with(plan.name, "giving the previous container its name back",
                         lambda: rename_container(old, plan.docker_name))
    change.txn.after_commit(plan.name, "previous container removed", lambda: remove_container(old))
    change.retired.add(plan.name)


def _reload(change: NodeChange, plan: ContainerPlan, container) -> None:
    """Apply changed live files in place: the node keeps running, and its connections."""
    previous = {path: read_lab_file(container, path) for path in plan.live_files_marked()}
    with engine_call(f"updating the config of node '{plan.name}'"):
        put_lab_files(container, plan.live_files_marked())
        change.txn.undo_with(plan.name, "restoring its previous config",
                             lambda: _apply_live_files(container, plan, previous))
        _apply_live_files(container, plan, None)


def _apply_live_files(container, plan: ContainerPlan, files: dict[str, str] | None) -> None:
    if files is not None:
        put_lab_files(container, files)
    if plan.reload:
        result = run_command(container, list(plan.reload))
        if result.exit_code != 0:
            raise NodeFailed(plan.name, f"reloading its config failed ({' '.join(plan.reload)})",
                             (result.stdout + result.stderr).decode(errors="replace"))


def _keep(change: NodeChange, plan: ContainerPlan, container) -> bool:
    """True when the running node is ready, or was repaired; False when it must be recreated."""
    if plan.name in change.trusted or probe_passes(container, with_routes_check(container, list(plan.probe.command))):
        with change.report_lock:
            change.report.unchanged.append(plan.name)
        return True
    change.routes.install(container, plan.name)
    try:
        wait_until_ready(container, plan.name, Probe(plan.probe.command, REPAIR_TIMEOUT, plan.probe.what),
                         change.cancel)
    except NodeFailed:
        return False
    change.note("repaired", plan.name, "was not ready: routes installed again, ready now")
    return True


def bring_up(change: NodeChange, plan: ContainerPlan, action: str, existing, image: str,
             config_hash: str) -> None:
    """Make one node match its plan, recording how to undo each step."""
    if action == "keep" and _keep(change, plan, existing):
        return
    if action == "reload":
        _reload(change, plan, existing)
        change.note("reloaded", plan.name, "config reloaded in place")
        return
    if action == "start":
        seconds = start_and_wait(change.routes, existing, plan.name, plan.probe, change.cancel)
        change.txn.undo_with(plan.name, "stopping it again", lambda: stop_gently(existing))
        change.note("started", plan.name, f"started, ready in {seconds:.1f} s")
        return
    began = time.monotonic()
    if existing is not None and plan.name not in change.retired:
        retire(change, plan, existing)
    _create_new(change, plan, image, config_hash)
    bucket = "created" if existing is None else "recreated"
    change.note(bucket, plan.name, f"{bucket}, ready in {time.monotonic() - began:.1f} s")
