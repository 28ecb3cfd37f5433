"""What would make `lab up` fail, found before it changes anything.

A name taken by a container or network that is not the lab's, a subnet that
overlaps another engine network, an address of the plan held by a container
that is not the lab's: each is refused up front with a sentence that names
the object and the fix, so a failed `up` never starts undoing a running lab.
"""

from __future__ import annotations

import ipaddress

import docker
import docker.errors

from lab.errors import RuntimeFailure
from lab.plan import Plan
from lab.plan.model import LABEL_LAB
from lab.backends.docker.engine import engine_call


def _owner(labels: dict | None) -> str | None:
    return (labels or {}).get(LABEL_LAB)


def _taken_container_names(client: docker.DockerClient, plan: Plan) -> list[str]:
    problems = []
    with engine_call("listing the engine's containers"):
        everything = client.containers.list(all=True, sparse=True, ignore_removed=True)
    by_name = {(c.attrs.get("Names") or ["/"])[0].lstrip("/"): c for c in everything}
    for container in plan.containers:
        found = by_name.get(container.docker_name)
        if found is not None and _owner(found.attrs.get("Labels")) != plan.lab:
            problems.append(f"the container name '{container.docker_name}' (node {container.name}) is "
                            "taken by a container that is not part of this lab: remove or rename it "
                            f"(docker rm -f {container.docker_name}), or rename the lab")
    return problems


def _network_problems(client: docker.DockerClient, plan: Plan) -> list[str]:
    problems = []
    with engine_call("listing the engine's networks"):
        networks = client.networks.list()
    ours = {n.docker_name: n for n in plan.networks}
    for network in networks:
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


def _foreign_addresses(client: docker.DockerClient, plan: Plan, ours: set[str]) -> list[str]:
    """Addresses of the plan already held, on the lab's own networks, by containers not of the lab
    (ours: the names of every container with the lab's label)."""
    wanted = {(net, address): c.name for c in plan.containers for net, address in c.addresses.items()}
    problems = []
    for network_plan in plan.networks:
        try:
            network = client.networks.get(network_plan.docker_name)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as error:
            raise RuntimeFailure(f"inspecting network {network_plan.docker_name}: {error.explanation}") from error
        for endpoint in (network.attrs.get("Containers") or {}).values():
            address = (endpoint.get("IPv4Address") or "").split("/")[0]
            name = endpoint.get("Name", "")
            node = wanted.get((network_plan.docker_name, address))
            if node and name not in ours:
                problems.append(f"address {address} of node {node} on network '{network_plan.name}' is "
                                f"held by container '{name}', which is not part of this lab: "
                                f"disconnect it (docker network disconnect {network.name} {name})")
    return problems


def check_plan_can_apply(client: docker.DockerClient, plan: Plan, ours: set[str]) -> None:
    """RuntimeFailure listing every reason the plan cannot be applied, before any change."""
    problems = _taken_container_names(client, plan) + _network_problems(client, plan)
    problems += _foreign_addresses(client, plan, ours)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise RuntimeFailure(f"lab '{plan.lab}' cannot be brought up; nothing was changed:\n{listed}")
