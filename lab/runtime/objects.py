"""Finding, creating and removing the engine objects of a lab, by label.

Labels are the only state: whatever a lab made carries `lab.name`, so `down`
finds it all even if the topology file changed or vanished.
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Mapping

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from lab.errors import RuntimeFailure
from lab.plan.model import (LABEL_HASH, LABEL_LAB, LABEL_NODE, LABEL_PROBE, PROBE_SEPARATOR, ContainerPlan,
                            NetworkPlan)
from lab.plan.seal import SEALED_BRIDGE_OPTIONS
from lab.runtime.engine import engine_call



def lab_filter(lab: str) -> dict:
    return {"label": f"{LABEL_LAB}={lab}"}


def lab_containers(client: docker.DockerClient, lab: str) -> dict[str, docker.models.containers.Container]:
    """node name -> container, for every container of the lab (running or not)."""
    with engine_call(f"listing the containers of lab '{lab}'"):
        found = client.containers.list(all=True, filters=lab_filter(lab))
    # Only node containers: short-lived helpers carry the lab's label but no node.
    return {c.labels[LABEL_NODE]: c for c in found if LABEL_NODE in c.labels}


def lab_networks(client: docker.DockerClient, lab: str) -> list:
    with engine_call(f"listing the networks of lab '{lab}'"):
        return client.networks.list(filters=lab_filter(lab))


def lab_volumes(client: docker.DockerClient, lab: str) -> list:
    with engine_call(f"listing the volumes of lab '{lab}'"):
        return client.volumes.list(filters=lab_filter(lab))


def network_subnet(network) -> str | None:
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return configs[0].get("Subnet") if configs else None


def create_network(client: docker.DockerClient, plan: NetworkPlan):
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=plan.subnet, gateway=plan.gateway)])
    try:
        return client.networks.create(plan.docker_name, driver="bridge", ipam=ipam,
                                      options=dict(SEALED_BRIDGE_OPTIONS),   # see lab/plan/seal.py
                                      labels=dict(plan.labels), check_duplicate=True)
    except docker.errors.APIError as error:
        hint = ""
        if "overlap" in str(error).lower():
            hint = (": another engine network already uses an overlapping subnet; change this "
                    "network's subnet in the topology or remove that network (docker network ls)")
        raise RuntimeFailure(f"cannot create network '{plan.name}' ({plan.subnet}){hint or ': ' + str(error.explanation)}") from error


def ensure_volume(client: docker.DockerClient, name: str, lab: str) -> bool:
    """Create a named data volume if missing; True when it was created now."""
    with engine_call(f"creating volume {name}"):
        try:
            client.volumes.get(name)
            return False
        except docker.errors.NotFound:
            client.volumes.create(name, labels={LABEL_LAB: lab})
            return True


def _lab_files_tar(files: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo("lab")
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, time.time()
        tar.addfile(directory)
        for path, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(f"lab/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, time.time()
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def create_container(client: docker.DockerClient, plan: ContainerPlan, image: str, config_hash: str):
    """Create (not start) a node's container, attached to all its networks, its files in /lab."""
    networks = list(plan.addresses.items())
    first_network, first_address = networks[0]
    labels = {**plan.labels, LABEL_HASH: config_hash, LABEL_PROBE: PROBE_SEPARATOR.join(plan.probe.command)}
    with engine_call(f"creating the container of node '{plan.name}'"):
        container = client.containers.create(
            image, name=plan.docker_name, hostname=plan.name, labels=labels, detach=True,
            cap_add=list(plan.capabilities) or None, sysctls=dict(plan.sysctls) or None,
            network=first_network,
            networking_config={first_network: client.api.create_endpoint_config(ipv4_address=first_address)},
            volumes={name: {"bind": path, "mode": "rw"} for name, path in plan.volumes.items()} or None,
        )
        for network, address in networks[1:]:
            client.networks.get(network).connect(container, ipv4_address=address)
        container.put_archive("/", _lab_files_tar(plan.all_files()))
    return container


def put_lab_files(container, files: Mapping[str, str]) -> None:
    container.put_archive("/", _lab_files_tar(files))


def remove_container(container) -> None:
    try:
        container.remove(force=True, v=False)
    except docker.errors.NotFound:
        pass  # already gone: removing twice is fine


def remove_network(network) -> None:
    try:
        network.remove()
    except docker.errors.NotFound:
        pass


def probe_command(container) -> list[str]:
    text = container.labels.get(LABEL_PROBE, "")
    return text.split(PROBE_SEPARATOR) if text else []


def log_tail(container, lines: int = 20) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace")
    except docker.errors.APIError:
        return ""


def read_lab_file(container, path: str) -> str:
    """A file the planner put under /lab, read back from the container."""
    try:
        stream, _ = container.get_archive(f"/lab/{path}")
    except docker.errors.NotFound:
        return ""
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read().decode() if handle else ""
