"""Short-lived helper containers inside a lab: a tool run once beside the lab's nodes.

Two shapes: `run_helper` runs a tool at an address of a lab network;
`namespace_helper`/`run_in_namespace` run one inside a node's network
namespace (the node needs neither the tool nor the capability). A helper
carries the lab's label (so `lab down` removes it if it is left behind) and a
role label, but no node label, so it is never mistaken for a node.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import docker

from lab.plan.model import LABEL_LAB
from lab.backends.docker.engine import engine_call
from lab.backends.docker.objects import remove_container

LABEL_ROLE = "lab.role"


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


@contextmanager
def namespace_helper(client: docker.DockerClient, lab: str, role: str, image: str, script: str,
                     network_mode: str, capabilities: list[str], environment: dict | None = None,
                     arguments: list[str] | None = None, attach: bool = False,
                     pid_mode: str | None = None, archive: tuple[str, bytes] | None = None,
                     cpu_shares: int | None = None, stdin_open: bool = False) -> Iterator[tuple]:
    """A started helper running `sh -c script` (with arguments as "$@") in network_mode
    ("container:ID" joins a node's network namespace, "none" gives a throwaway one).
    Yields (helper, stdout stream or None); the helper is removed on leaving, whatever
    happens. With attach, stdout is read through the engine's attach connection (bytes exact).
    archive (folder, tar bytes) is unpacked into the helper before it starts; stdin_open keeps
    its standard input open for requests (helper_channel.py)."""
    with engine_call(f"starting a {role} helper"):
        helper = client.containers.create(
            image, entrypoint=["/bin/sh", "-c", script, role], command=list(arguments or []),
            environment=environment or {}, network_mode=network_mode, cap_add=capabilities,
            pid_mode=pid_mode, labels={LABEL_LAB: lab, LABEL_ROLE: role}, detach=True, cpu_shares=cpu_shares,
            stdin_open=stdin_open)
    try:
        with engine_call(f"starting a {role} helper"):
            if archive is not None:
                helper.put_archive(*archive)
            stream = (client.api.attach(helper.id, stdout=True, stderr=False, stream=True, logs=False)
                      if attach else None)
            helper.start()
        yield helper, stream
    finally:
        remove_container(helper)


def run_in_namespace(client: docker.DockerClient, lab: str, role: str, image: str, script: str,
                     network_mode: str, capabilities: list[str], environment: dict | None = None,
                     timeout: float = 60) -> tuple[int, str, str]:
    """Run script to its end in a namespace helper: (exit status, stdout, stderr)."""
    with namespace_helper(client, lab, role, image, script, network_mode, capabilities, environment) as (helper, _):
        with engine_call(f"running a {role} helper"):
            code = helper.wait(timeout=timeout).get("StatusCode", 1)
            stdout = helper.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = helper.logs(stdout=False, stderr=True).decode(errors="replace")
    return code, stdout, stderr
