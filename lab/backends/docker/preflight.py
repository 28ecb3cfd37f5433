"""What would make `lab up` fail, found before it changes anything.

A name taken by a container or network that is not the lab's, a subnet that
overlaps another engine network, an address of the plan held by a container
that is not the lab's: each is refused up front with a sentence that names
the object and the fix, so a failed `up` never starts undoing a running lab.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import docker

from lab.errors import RuntimeFailure
from lab.plan import Plan
from lab.plan.model import LABEL_LAB
from lab.backends.docker.engine import engine_call
from lab.backends.docker.objects import list_containers


def _owner(labels: dict | None) -> str | None:
    return (labels or {}).get(LABEL_LAB)


@dataclass(frozen=True)
class EngineView:
    """Every container and network of the engine, each listed in one call (summaries: see
    objects.list_containers), read once by `lab up` for its checks and its decisions."""

    containers: list
    networks: list

    def lab_containers(self, lab: str) -> list:
        return [c for c in self.containers if _owner(c.labels) == lab]

    def lab_networks(self, lab: str) -> list:
        return [n for n in self.networks if _owner(n.attrs.get("Labels")) == lab]


def look(client: docker.DockerClient) -> EngineView:
    containers = list_containers(client, None, "listing the engine's containers")
    with engine_call("listing the engine's networks"):
        networks = client.networks.list()   # the engine's list has subnets and labels: one call
    return EngineView(containers, networks)


def _taken_container_names(view: EngineView, plan: Plan) -> list[str]:
    problems = []
    by_name = {c.name: c for c in view.containers}
    for container in plan.containers:
        found = by_name.get(container.docker_name)
        if found is not None and _owner(found.labels) != plan.lab:
            problems.append(f"the container name '{container.docker_name}' (node {container.name}) is "
                            "taken by a container that is not part of this lab: remove or rename it "
                            f"(docker rm -f {container.docker_name}), or rename the lab")
    return problems


def _network_problems(view: EngineView, plan: Plan) -> list[str]:
    problems = []
    ours = {n.docker_name: n for n in plan.networks}
    for network in view.networks:
        labels = network.attrs.get("Labels") or {}
        if network.name in ours and _owner(labels) != plan.lab:
            problems.append(f"the network name '{network.name}' is taken by a network that is not part "
                            f"of this lab: remove it (docker network rm {network.name}) or rename the lab")
            continue
        if _owner(labels) == plan.lab:
            continue
        for subnet in _subnets(network):
            for planned, mine in ((p, ipaddress.ip_network(s)) for p in plan.networks for s in p.subnets):
                if mine.version == subnet.version and mine.overlaps(subnet):
                    problems.append(f"network '{planned.name}' ({mine}) overlaps engine network "
                                    f"'{network.name}' ({subnet}): change the subnet in the topology, or "
                                    f"remove that network (docker network rm {network.name})")
    return problems


def _subnets(network) -> list:
    found = []
    for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
        try:
            found.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
        except ValueError:
            continue
    return found


def _foreign_addresses(view: EngineView, plan: Plan) -> list[str]:
    """Addresses of the plan already held, on the lab's own networks, by containers not of the lab
    (read from each container's own list entry: no call per network)."""
    wanted = {(net, address): c.name for c in plan.containers for net, address in c.addresses.items()}
    names = {n.docker_name: n.name for n in plan.networks}
    problems = []
    for container in view.containers:
        if _owner(container.labels) == plan.lab:
            continue
        for network, info in ((container.attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
            address = (info.get("IPAMConfig") or {}).get("IPv4Address") or info.get("IPAddress") or ""
            node = wanted.get((network, address))
            if node:
                problems.append(f"address {address} of node {node} on network '{names[network]}' is "
                                f"held by container '{container.name}', which is not part of this lab: "
                                f"disconnect it (docker network disconnect {network} {container.name})")
    return problems


def check_plan_can_apply(view: EngineView, plan: Plan) -> None:
    """RuntimeFailure listing every reason the plan cannot be applied, before any change."""
    problems = _taken_container_names(view, plan) + _network_problems(view, plan)
    problems += _foreign_addresses(view, plan)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise RuntimeFailure(f"lab '{plan.lab}' cannot be brought up; nothing was changed:\n{listed}")
