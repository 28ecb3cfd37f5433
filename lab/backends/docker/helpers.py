"""Short-lived helper containers inside a lab: a tool run once on a lab network.

A helper carries the lab's label (so `lab down` removes it if it is left
behind) but no node label, so it is never mistaken for a node.
"""

from __future__ import annotations

import docker

from lab.plan.model import LABEL_LAB
from lab.backends.docker.engine import engine_call


def run_helper(client: docker.DockerClient, lab: str, network: str, address: str, image: str,
               command: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run command in a fresh container of image at address on the lab network (engine
    name); return its exit status and output. The container is removed afterwards."""
    name = f"{lab}-helper-{address.replace('.', '-')}"
    with engine_call(f"starting a helper container on {network}"):
        networking = client.api.create_networking_config(
            {network: client.api.create_endpoint_config(ipv4_address=address)})
        created = client.api.create_container(
            image, command=command, entrypoint=[], name=name, labels={LABEL_LAB: lab},
            networking_config=networking, host_config=client.api.create_host_config())
        container = client.containers.get(created["Id"])
    try:
        with engine_call(f"running {command[0]} in a helper container"):
            container.start()
            status = container.wait(timeout=timeout)
            return status.get("StatusCode", 1), container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
