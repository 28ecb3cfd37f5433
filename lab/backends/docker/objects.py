"""Finding, creating and removing the engine objects of a lab, by label.

Labels are the only state: whatever a lab made carries `lab.name`, so `down`
finds it all even if the topology file changed or vanished.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from lab.errors import RuntimeFailure
from lab.plan.model import (LABEL_HASH, LABEL_LAB, LABEL_NODE, LABEL_PROBE, PROBE_SEPARATOR, ContainerPlan,
                            NetworkPlan)
from lab.plan.seal import SEALED_BRIDGE_OPTIONS
from lab.backends.docker.engine import ENGINE_ERRORS, engine_call
from lab.backends.docker.lab_files import FILES_ENV, environment_value, files_from_environment, files_tar, split_delivery
from lab.backends.docker.ready_report import LABEL_READY_REPORT, ready_files

# A container being replaced keeps running under this suffix until its successor is
# ready (so a failed `up` can put it back); it is never a node of the lab.
RETIRED_SUFFIX = ".previous"
STOP_GRACE_SECONDS = 10     # a node's main process gets this long to exit cleanly
SUMMARY = "LabSummary"      # marks attrs read from a list, not an inspect


def lab_filter(lab: str) -> dict:
    return {"label": f"{LABEL_LAB}={lab}"}


def lab_containers(client: docker.DockerClient, lab: str) -> dict[str, docker.models.containers.Container]:
    """node name -> container, for every container of the lab (running or not)."""
    return nodes_by_name(all_lab_containers(client, lab))


def nodes_by_name(containers: list) -> dict:
    return {c.labels[LABEL_NODE]: c for c in containers if is_node(c)}


def all_lab_containers(client: docker.DockerClient, lab: str) -> list:
    """Every container labelled with the lab: nodes, retired nodes and helpers (summaries)."""
    return list_containers(client, lab_filter(lab), f"listing the containers of lab '{lab}'")


def list_containers(client: docker.DockerClient, filters: dict | None, what: str) -> list:
    """Containers as the engine's list shows them, in one call whatever their number.

    The SDK's list inspects each container (one more call each: a no-op `lab up` of 100
    nodes paid 100 of them per listing); the list's own entry has what lab decisions read
    (name, labels, state, networks and addresses). It is reshaped like an inspect's so the
    SDK's properties work; what only an inspect has (the process id, capabilities) is read
    after `reload()`, which the code that starts or enters a node does anyway."""
    with engine_call(what):
        entries = client.api.containers(all=True, filters=filters)
    return [summary_container(client, entry) for entry in entries]


def summary_container(client: docker.DockerClient, entry: dict):
    names = entry.get("Names") or ["/"]
    attrs = {**entry, "Name": names[0], "Image": entry.get("ImageID", entry.get("Image")),
             "Config": {"Labels": entry.get("Labels") or {}, "Image": entry.get("Image")},
             "State": {"Status": entry.get("State")}, SUMMARY: True}
    return client.containers.prepare_model(attrs)


def is_summary(container) -> bool:
    """True for a container known only from a list (see list_containers)."""
    return bool(container.attrs.get(SUMMARY))


def is_node(container) -> bool:
    """A node's container: has a node label and carries its node's own name.

    Short-lived helpers carry the lab's label but no node; a retired container
    (being replaced) carries its node's label under another name."""
    node = container.labels.get(LABEL_NODE)
    lab = container.labels.get(LABEL_LAB)
    return bool(node) and container.name == f"{lab}-{node}"


def lab_networks(client: docker.DockerClient, lab: str) -> list:
    with engine_call(f"listing the networks of lab '{lab}'"):
        return client.networks.list(filters=lab_filter(lab))


def lab_volumes(client: docker.DockerClient, lab: str) -> list:
    with engine_call(f"listing the volumes of lab '{lab}'"):
        return client.volumes.list(filters=lab_filter(lab))


def network_subnet(network) -> str | None:
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return configs[0].get("Subnet") if configs else None


def network_subnets(network) -> set[str]:
    """Every subnet of an engine network (its IPv4 one and, when dual-stack, its IPv6 prefix)."""
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return {config["Subnet"] for config in configs if config.get("Subnet")}


def create_network(client: docker.DockerClient, plan: NetworkPlan):
    pools = [IPAMPool(subnet=plan.subnet, gateway=plan.gateway)]
    if plan.subnet6:
        pools.append(IPAMPool(subnet=plan.subnet6, gateway=plan.gateway6))
    try:
        return client.networks.create(plan.docker_name, driver="bridge", ipam=IPAMConfig(pool_configs=pools),
                                      enable_ipv6=bool(plan.subnet6),
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


def create_container(client: docker.DockerClient, plan: ContainerPlan, image: str, config_hash: str):
    """Create (not start) a node's container, attached to all its networks, its files in /lab."""
    networks = list(plan.addresses.items())
    first_network, first_address = networks[0]
    labels = {**plan.labels, LABEL_HASH: config_hash, LABEL_PROBE: PROBE_SEPARATOR.join(plan.probe.command)}
    report = ready_files(plan)
    if report:
        labels[LABEL_READY_REPORT] = "1"
    volumes = {name: {"bind": path, "mode": "rw"} for name, path in plan.volumes.items()}
    by_environment, by_archive = split_delivery(plan, {**plan.all_files(), **report})
    with engine_call(f"creating the container of node '{plan.name}'"):
        # The low-level calls: the SDK's create inspects what it made, and its network
        # connect inspects the network first (a call each, per node, that nothing reads).
        made = client.api.create_container(
            image, command=list(plan.command) if plan.command is not None else None,
            name=plan.docker_name, hostname=plan.name, labels=labels, detach=True,
            host_config=client.api.create_host_config(
                cap_add=list(plan.capabilities) or None, sysctls=dict(plan.sysctls) or None,
                network_mode=first_network, binds=[f"{n}:{v['bind']}:{v['mode']}" for n, v in volumes.items()]
                or None),
            networking_config=client.api.create_networking_config(
                {first_network: client.api.create_endpoint_config(
                    ipv4_address=first_address, ipv6_address=plan.addresses6.get(first_network))}),
            volumes=[v["bind"] for v in volumes.values()] or None,
            environment={FILES_ENV: environment_value(by_environment)} if by_environment else None,
        )
        for network, address in networks[1:]:
            client.api.connect_container_to_network(made["Id"], network, ipv4_address=address,
                                                    ipv6_address=plan.addresses6.get(network))
        if by_archive:
            client.api.put_archive(made["Id"], "/", files_tar(by_archive))
    # Known by its id only until it is started (start_and_wait reads it all then).
    return client.containers.prepare_model({"Id": made["Id"], "Name": "/" + plan.docker_name,
                                            "Config": {"Labels": labels}, SUMMARY: True})


def put_lab_files(container, files: Mapping[str, str]) -> None:
    container.put_archive("/", files_tar(files))


def stop_gently(container, grace: float = STOP_GRACE_SECONDS) -> None:
    """Ask the main process to exit (its image's stop signal), kill it after grace seconds."""
    try:
        container.stop(timeout=int(grace))
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if error.status_code != 409:   # 409: already stopping or being removed
            raise RuntimeFailure(f"stopping container {container.name}: {error.explanation}") from error


def remove_container(container, grace: float | None = None) -> None:
    """Remove a container (stopping it gently first when grace is given); gone already is fine."""
    if grace is not None:
        stop_gently(container, grace)
    for attempt in range(20):
        try:
            container.remove(force=True, v=False)
            return
        except docker.errors.NotFound:
            return  # already gone: removing twice is fine
        except docker.errors.APIError as error:
            # 409: the engine is already removing it (another command, or a race): wait for that.
            if error.status_code != 409 or attempt == 19:
                raise RuntimeFailure(f"removing container {container.name}: {error.explanation}") from error
            time.sleep(0.25)


def remove_containers(containers: list, grace: float | None, workers: int) -> None:
    """Remove many containers in parallel without tripping the engine's endpoint count.

    Docker 20.10 can lose count of a network's endpoints when several of them leave it at
    the same moment (a container's stop releases its endpoints), and then refuses to remove
    the network until it restarts. So each container first leaves its networks one at a
    time per network (a lock per network; different networks in parallel), while it still
    runs; its stop and removal, the slow part, then run fully in parallel."""
    locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
    guard = threading.Lock()

    def lock_for(network: str) -> threading.Lock:
        with guard:
            return locks[network]

    def one(container) -> None:
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        for network in sorted(networks):
            with lock_for(network):
                try:
                    container.client.api.disconnect_container_from_network(container.id, network, force=True)
                except docker.errors.APIError:
                    pass   # gone already, or never attached: the removal below settles it
        remove_container(container, grace=grace)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, containers))


def _disconnect_leftovers(network) -> None:
    try:
        network.reload()
    except docker.errors.NotFound:
        return
    for endpoint in (network.attrs.get("Containers") or {}).values():
        try:
            network.disconnect(endpoint.get("Name", ""), force=True)
        except docker.errors.APIError:
            pass   # gone meanwhile, or a stale endpoint the engine cannot name


def remove_network(network, attempts: int = 8) -> None:
    """Remove a network; gone already is fine. Endpoints still attached (an engine race when
    many containers leave at once, or a container attached by hand) are disconnected and
    the removal retried, before giving up with a sentence a user can act on."""
    for attempt in range(attempts):
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            if error.status_code not in (403, 409):
                raise RuntimeFailure(f"removing network {network.name}: {error.explanation}") from error
        _disconnect_leftovers(network)
        time.sleep(0.25 * (attempt + 1))
    raise RuntimeFailure(
        f"the engine still counts endpoints on network {network.name} though nothing of the lab "
        "is attached (a known Docker 20.10 race after many containers leave at once): restart the "
        "engine (`systemctl restart docker`), then run `lab down` again")


def rename_container(container, name: str) -> None:
    with engine_call(f"renaming container {container.name} to {name}"):
        container.rename(name)
        container.reload()


def probe_command(container) -> list[str]:
    text = container.labels.get(LABEL_PROBE, "")
    return text.split(PROBE_SEPARATOR) if text else []


def log_tail(container, lines: int = 20) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace")
    except ENGINE_ERRORS:
        return ""


def read_lab_file(container, path: str) -> str:
    """A file the planner put under /lab, read back from the container."""
    try:
        stream, _ = container.get_archive(f"/lab/{path}")
    except docker.errors.NotFound:   # not there yet: a node never started has them in its environment
        if is_summary(container):
            container.reload()
        return (files_from_environment(container) or {}).get(path, "")
    except docker.errors.APIError as error:
        raise RuntimeFailure(f"reading /lab/{path} of {container.name}: {error.explanation}") from error
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read().decode() if handle else ""
