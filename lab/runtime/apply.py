"""`lab up` and `lab down`: make the engine match a plan, or remove a lab.

Up compares each planned container with what runs (a hash of its rendered
config is stored as a label), creates what is missing, recreates what changed,
starts what was stopped and leaves the rest alone. Stages start in order and
each stage's containers start in parallel; a node counts as up only when its
kind's probe passes. If anything fails, what this run created is removed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import docker

from lab.errors import LabError
from lab.plan import ContainerPlan, Plan
from lab.plan.model import LABEL_HASH, LABEL_LAB, LIVE_HASH_FILE
from lab.runtime.engine import NodeFailed, engine_call
from lab.runtime.images import ensure_images
from lab.runtime.objects import (create_container, create_network, ensure_volume, lab_containers,
                                 lab_networks, lab_volumes, network_subnet, put_lab_files,
                                 read_lab_file, remove_container, remove_network)
from lab.runtime.readiness import start_and_wait

WORKERS = 8
Events = Callable[[str, str, str], None]   # (event, subject, detail)


@dataclass
class UpReport:
    created: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    networks_created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.recreated or self.reloaded or self.started or self.removed
                    or self.networks_created)


@dataclass
class DownReport:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


class _Run:
    """What one `up` made, so a failure can take exactly that back."""

    def __init__(self, client: docker.DockerClient, plan: Plan, events: Events):
        self.client, self.plan, self.events = client, plan, events
        self.made_containers: list = []
        self.made_networks: list = []
        self.made_volumes: list[str] = []
        self.report = UpReport()

    def rollback(self) -> None:
        self.events("rollback", self.plan.lab, "removing what this run created")
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(remove_container, self.made_containers))
        for network in self.made_networks:
            remove_network(network)
        for name in self.made_volumes:
            try:
                self.client.volumes.get(name).remove()
            except docker.errors.APIError:
                pass


def _decide(plan: ContainerPlan, existing, config_hash: str) -> str:
    if existing is None:
        return "create"
    if existing.labels.get(LABEL_HASH) != config_hash:
        return "recreate"
    if read_lab_file(existing, LIVE_HASH_FILE).strip() != plan.live_hash():
        return "reload" if existing.status == "running" else "recreate"
    return "keep" if existing.status == "running" else "start"


def _reload(run: _Run, plan: ContainerPlan, container) -> None:
    """Apply changed live files in place: the node keeps running, and its connections."""
    with engine_call(f"updating the config of node '{plan.name}'"):
        put_lab_files(container, plan.live_files_marked())
        if plan.reload:
            result = container.exec_run(list(plan.reload))
            if result.exit_code != 0:
                raise NodeFailed(plan.name, f"reloading its config failed ({' '.join(plan.reload)})",
                                 result.output.decode(errors="replace"))
    run.report.reloaded.append(plan.name)
    run.events("ready", plan.name, "config reloaded in place")


def _sync_networks(run: _Run, existing_containers: dict) -> set[str]:
    """Create missing networks; replace those whose subnet changed. Returns replaced names."""
    current = {n.name: n for n in lab_networks(run.client, run.plan.lab)}
    replaced = set()
    for net in run.plan.networks:
        found = current.get(net.docker_name)
        if found is not None and network_subnet(found) != net.subnet:
            for container in existing_containers.values():
                if net.docker_name in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}):
                    remove_container(container)
            remove_network(found)
            replaced.add(net.docker_name)
            found = None
        if found is None:
            run.made_networks.append(create_network(run.client, net))
            run.report.networks_created.append(net.name)
            run.events("network", net.name, net.subnet)
    return replaced


def _bring_up(run: _Run, plan: ContainerPlan, action: str, existing, image: str, config_hash: str) -> None:
    if action == "keep":
        run.report.unchanged.append(plan.name)
        return
    if action == "reload":
        _reload(run, plan, existing)
        return
    if action == "start":
        seconds = start_and_wait(run.client, existing, plan.name, plan.probe)
        run.report.started.append(plan.name)
        run.events("ready", plan.name, f"started, ready in {seconds:.1f} s")
        return
    if existing is not None:
        remove_container(existing)
    for volume, _path in plan.volumes.items():
        if ensure_volume(run.client, volume, run.plan.lab):
            run.made_volumes.append(volume)
    container = create_container(run.client, plan, image, config_hash)
    run.made_containers.append(container)
    seconds = start_and_wait(run.client, container, plan.name, plan.probe)
    (run.report.recreated if action == "recreate" else run.report.created).append(plan.name)
    run.events("ready", plan.name, f"{'recreated' if action == 'recreate' else 'created'}, ready in {seconds:.1f} s")


def up(client: docker.DockerClient, plan: Plan, events: Events | None = None,
       build_progress: Callable[[str, str], None] | None = None) -> UpReport:
    events = events or (lambda *_: None)
    started = time.monotonic()
    images = ensure_images(client, sorted({c.kind for c in plan.containers}), build_progress)
    run = _Run(client, plan, events)
    try:
        existing = lab_containers(client, plan.lab)
        planned = {c.name for c in plan.containers}
        for name, container in existing.items():
            if name not in planned:
                remove_container(container)
                run.report.removed.append(name)
                events("removed", name, "no longer in the topology")
        replaced = _sync_networks(run, existing)
        with ThreadPoolExecutor(WORKERS) as pool:
            for stage in plan.stages():
                jobs = []
                for container_plan in stage:
                    image = images[container_plan.kind]
                    config_hash = container_plan.config_hash(image)
                    found = existing.get(container_plan.name)
                    if found is not None and set(container_plan.addresses) & replaced:
                        found = None  # removed with its network
                    action = _decide(container_plan, found, config_hash)
                    jobs.append(pool.submit(_bring_up, run, container_plan, action, found, image, config_hash))
                for job in jobs:   # wait for the whole stage; the first error wins
                    job.exception()
                for job in jobs:
                    job.result()
        for network in lab_networks(client, plan.lab):
            if network.name not in {n.docker_name for n in plan.networks}:
                remove_network(network)
    except (LabError, KeyboardInterrupt):
        run.rollback()
        raise
    run.report.seconds = time.monotonic() - started
    return run.report


def down(client: docker.DockerClient, lab: str, volumes: bool = False,
         events: Events | None = None) -> DownReport:
    """Remove every container and network of a lab; data volumes only when asked."""
    events = events or (lambda *_: None)
    report = DownReport()
    containers = lab_containers(client, lab)
    with engine_call(f"listing the containers of lab '{lab}'"):
        # every container with the lab's label: nodes, and helpers (compose's route companions)
        everything = client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab}"})
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(remove_container, everything))
    report.containers = sorted(containers)
    for network in lab_networks(client, lab):
        remove_network(network)
        report.networks.append(network.name)
    if volumes:
        for volume in lab_volumes(client, lab):
            with engine_call(f"removing volume {volume.name}"):
                volume.remove(force=True)
            report.volumes.append(volume.name)
    events("down", lab, f"{len(report.containers)} containers, {len(report.networks)} networks removed")
    return report
