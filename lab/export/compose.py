"""A lab's plan as a compose file that plain docker compose (Debian's docker-compose 1.29) runs.

Same images (lab/<service>:latest, made by `lab build`), networks, addresses,
labels and rendered /lab files (written next to the compose file, mounted at
/lab). Nodes without NET_ADMIN get their routes from a one-shot companion
service sharing their network namespace, as `lab up` does; start order follows
the plan's stages with health checks (the same readiness probes).
Pure: writes nothing itself; the caller writes the text and the files.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import yaml

from lab.plan.model import LABEL_FILE, LABEL_PROBE, PROBE_SEPARATOR, ContainerPlan, Plan, built_image_name
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL6_FILE, SEAL_FILE, SEALED_BRIDGE_OPTIONS
from lab.plan.web import SECRET_FILES

COMPOSE_VERSION = "2.4"   # the format with health-gated depends_on that docker-compose 1.29 runs
HEALTH_INTERVAL = "2s"


def compose_files(plan: Plan, files_dir: str) -> dict[str, str]:
    """Relative path -> content of every node's /lab files, under files_dir."""
    result = {}
    for container in plan.containers:
        for path, content in container.all_files().items():
            result[str(PurePosixPath(files_dir) / container.name / path)] = content
    return result


def secret_paths(plan: Plan, files_dir: str) -> set[str]:
    """Which of compose_files' paths hold a secret (a key, a password): written 0600."""
    return {str(PurePosixPath(files_dir) / container.name / path)
            for container in plan.containers for path in container.all_files() if path in SECRET_FILES}


def _healthcheck(container: ContainerPlan) -> dict:
    return {"test": ["CMD", *container.probe.command], "interval": HEALTH_INTERVAL, "timeout": "5s",
            "retries": max(3, int(container.probe.timeout / 2)), "start_period": "2s"}


def _image(plan: Plan, container: ContainerPlan) -> dict:
    if container.image:
        return {"image": container.image}
    if container.build:
        return {"image": f"{built_image_name(plan.lab, container.node)}:latest", "build": container.build}
    return {"image": f"lab/{container.service}:latest"}


def _service(plan: Plan, container: ContainerPlan, files_dir: str, previous: list[str], source: str) -> dict:
    # The file label as the user wrote it: an absolute path would tie the file to one machine.
    labels = {**container.labels, LABEL_FILE: source, LABEL_PROBE: PROBE_SEPARATOR.join(container.probe.command)}
    service = {
        **_image(plan, container),
        "container_name": container.docker_name,
        "hostname": container.name,
        "labels": labels,
        "networks": {_network_key(plan, net): {"ipv4_address": address,
                                               **({"ipv6_address": container.addresses6[net]}
                                                  if net in container.addresses6 else {})}
                     for net, address in container.addresses.items()},
        "volumes": [f"./{files_dir}/{container.name}:/lab"]
                   + [f"{volume}:{path}" for volume, path in container.volumes.items()],
        "healthcheck": _healthcheck(container),
    }
    if container.command is not None:
        service["command"] = list(container.command)
    if container.capabilities:
        service["cap_add"] = list(container.capabilities)
    if container.sysctls:
        service["sysctls"] = dict(container.sysctls)
    if previous:
        service["depends_on"] = {name: {"condition": "service_healthy"} for name in previous}
    return service


def _route_companion(plan: Plan, container: ContainerPlan) -> dict:
    return {
        "image": _image(plan, container)["image"],   # built once, by the node's own service
        "network_mode": f"service:{container.name}",
        "cap_add": ["NET_ADMIN"],
        "entrypoint": ["/bin/sh", "-c", ROUTE_SCRIPT],
        "environment": {"LAB_ROUTES": container.files.get("routes", ""),
                        "LAB_SEAL": container.files.get(SEAL_FILE, ""),
                        **({"LAB_SEAL6": container.files[SEAL6_FILE]} if SEAL6_FILE in container.files else {})},
        "labels": {"lab.name": container.labels["lab.name"], "lab.role": "route-helper"},
        "depends_on": {container.name: {"condition": "service_started"}},
        "restart": "no",
    }


def _network_key(plan: Plan, docker_name: str) -> str:
    return next(n.name for n in plan.networks if n.docker_name == docker_name)


def _network(network) -> dict:
    config = [{"subnet": network.subnet, "gateway": network.gateway}]
    if network.subnet6:   # dual-stack: the engine makes the bridge with both prefixes
        config.append({"subnet": network.subnet6, **({"gateway": network.gateway6} if network.gateway6 else {})})
    return {"name": network.docker_name, "labels": dict(network.labels),
            "driver_opts": dict(SEALED_BRIDGE_OPTIONS),
            **({"enable_ipv6": True} if network.subnet6 else {}),
            "ipam": {"config": config}}


def compose_document(plan: Plan, files_dir: str, source: str) -> dict:
    services: dict[str, dict] = {}
    previous: list[str] = []
    for stage in plan.stages():
        for container in stage:
            services[container.name] = _service(plan, container, files_dir, previous, source)
            if "NET_ADMIN" not in container.capabilities:
                services[f"{container.name}-routes"] = _route_companion(plan, container)
        previous = [c.name for c in stage]
    networks = {n.name: _network(n) for n in plan.networks}
    volumes = {volume: {"name": volume, "labels": {"lab.name": plan.lab}}
               for c in plan.containers for volume in c.volumes}
    document = {"version": COMPOSE_VERSION, "services": services, "networks": networks}
    if volumes:
        document["volumes"] = volumes
    return document


def compose_text(plan: Plan, files_dir: str, source: str) -> str:
    header = (f"# The lab '{plan.lab}' ({source}) for plain docker compose, made by `lab export compose`.\n"
              f"# Run: lab build {source} && lab export compose {source} && docker-compose -p {plan.lab} up -d\n"
              f"# (`lab export compose` also writes each node's /lab files under ./{files_dir}/).\n")
    return header + yaml.safe_dump(_dollars_kept(compose_document(plan, files_dir, source)), sort_keys=False,
                                   width=120)


def _dollars_kept(value):
    """value with every $ doubled: compose substitutes $VARS in the file itself, so a probe's,
    a script's or a user's command's own $ must be written $$ to reach the container as it is."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _dollars_kept(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_dollars_kept(item) for item in value]
    return value
