"""Looking at running labs: status, the list of labs, logs, exec, stop and start a node."""

from __future__ import annotations

import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import docker

from lab.backends.protocol import NodeStatus
from lab.errors import RuntimeFailure, UsageError
from lab.plan.model import LABEL_COPY, LABEL_FILE, LABEL_KIND, LABEL_LAB, LABEL_NODE, LABEL_OWNER, Probe
from lab.backends.docker.engine import engine_call, run_command
from lab.backends.docker.ledger import drop_ledger, read_ledger, write_ledger
from lab.backends.docker.objects import (all_lab_containers, is_node, lab_containers, lab_networks, lab_volumes,
                                 probe_command, stop_gently)
from lab.backends.docker.netns import RouteInstaller
from lab.backends.docker.readiness import probe_passes, start_and_wait


def _addresses(container, lab: str) -> dict[str, str]:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    prefix = f"{lab}-"
    return {name.removeprefix(prefix): info.get("IPAddress") or (info.get("IPAMConfig") or {}).get("IPv4Address", "")
            for name, info in networks.items()}


def _status_of(container, lab: str) -> NodeStatus:
    state = container.status
    if state == "running":
        health = "ready" if probe_passes(container, probe_command(container)) else "not ready"
    else:
        health = "-"
    return NodeStatus(container.labels.get(LABEL_NODE, container.name), container.labels.get(LABEL_KIND, "?"),
                      _addresses(container, lab), state, health, container.name, container.short_id)


def lab_status(client: docker.DockerClient, lab: str) -> list[NodeStatus]:
    """One row per container of the lab, with a fresh readiness probe for running ones."""
    containers = list(lab_containers(client, lab).values())
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda c: _status_of(c, lab), containers))
    return sorted(rows, key=lambda r: r.node)


def list_labs(client: docker.DockerClient) -> list[dict]:
    """Every lab on this engine that has nodes: name, containers, running, topology file.

    Helpers and retired containers are not counted: leftovers alone are no lab."""
    with engine_call("listing labs"):
        # Containers of other labs vanish while we list: skipped, not an error.
        containers = client.containers.list(all=True, filters={"label": LABEL_LAB}, ignore_removed=True)
    labs: dict[str, dict] = {}
    for container in filter(is_node, containers):
        name = container.labels[LABEL_LAB]
        entry = labs.setdefault(name, {"lab": name, "containers": 0, "running": 0,
                                       "file": container.labels.get(LABEL_FILE, ""),
                                       "copy": int(container.labels.get(LABEL_COPY, "0") or 0),
                                       "owner": container.labels.get(LABEL_OWNER, "")})
        entry["containers"] += 1
        entry["running"] += container.status == "running"
    return sorted(labs.values(), key=lambda e: e["lab"])


def node_container(client: docker.DockerClient, lab: str, node: str):
    containers = lab_containers(client, lab)
    if node not in containers:
        known = ", ".join(sorted(containers)) or "none: is the lab up? (lab ls)"
        raise RuntimeFailure(f"lab '{lab}' has no node '{node}' (nodes: {known})")
    return containers[node]


def address_on_network(container, lab: str, network: str) -> str:
    """A node's address on one of its networks (topology name); UsageError if not on it."""
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    info = networks.get(f"{lab}-{network}")
    if info is None:
        known = ", ".join(sorted(name.removeprefix(f"{lab}-") for name in networks)) or "none"
        raise UsageError(f"node '{container.labels.get(LABEL_NODE)}' is not on network '{network}' "
                         f"(its networks: {known})")
    return (info.get("IPAMConfig") or {}).get("IPv4Address") or info.get("IPAddress") or ""


def stop_node(client: docker.DockerClient, lab: str, node: str) -> None:
    """Stop a node the way `down` does: its main process gets a clean shutdown first."""
    # The ledger stays: it vouches only for running nodes, and the next `lab up` starts this one.
    stop_gently(node_container(client, lab, node))


def lab_exists(client: docker.DockerClient, lab: str) -> bool:
    """Anything of the lab on the engine: a container (even a leftover), network or volume."""
    return bool(all_lab_containers(client, lab) or lab_networks(client, lab) or lab_volumes(client, lab))


def start_node(client: docker.DockerClient, lab: str, node: str) -> float:
    container = node_container(client, lab, node)
    probe = Probe(tuple(probe_command(container)), 120, "its readiness probe")
    # Killed between its start and its routes, the node would run unready: the ledger goes
    # first, and comes back (the same container, the same files) once the node is ready.
    ledger = read_ledger(client, lab)
    drop_ledger(client, lab)
    with RouteInstaller(client, lab) as routes:
        seconds = start_and_wait(routes, container, node, probe)
    if ledger is not None:
        write_ledger(client, lab, ledger)
    return seconds


def node_logs(client: docker.DockerClient, lab: str, node: str, follow: bool = False,
              tail: int | str = "all") -> Iterator[bytes]:
    container = node_container(client, lab, node)
    with engine_call(f"reading the log of node '{node}'"):
        if follow:
            yield from container.logs(stream=True, follow=True, tail=tail)
        else:
            yield container.logs(tail=tail)


def exec_in_node(client: docker.DockerClient, lab: str, node: str, command: list[str]) -> int:
    """Run a command in a node with the terminal attached; returns its exit status.

    The docker CLI, when present, gives a real interactive terminal; otherwise
    the SDK runs it without a TTY and copies its output.
    """
    container = node_container(client, lab, node)
    docker_cli = shutil.which("docker")
    if docker_cli and not os.environ.get("LAB_EXEC_VIA_SDK"):
        flags = ["-i"] + (["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else [])
        os.execv(docker_cli, [docker_cli, "exec", *flags, container.name, *command])
    with engine_call(f"running a command in node '{node}'"):
        result = run_command(container, command)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    return result.exit_code


def log_text(client: docker.DockerClient, lab: str, node: str, tail: int = 300) -> str:
    """The last lines of a node's log, as text (empty when the node is gone)."""
    try:
        return b"".join(node_logs(client, lab, node, tail=tail)).decode(errors="replace")
    except RuntimeFailure:
        return ""
