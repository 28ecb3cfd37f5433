"""Installing a node's routes from outside, for nodes that may not change their own.

Only routers and firewalls get NET_ADMIN. Every other node's routes are set by
a short-lived helper container that joins the node's network namespace with
NET_ADMIN, replaces the engine's default route with the lab's routes, and
exits. The node's own start-up waits for those routes before its service
starts, so nothing ever runs on the engine's routes.
"""

from __future__ import annotations

import docker
import docker.errors

from lab.plan.model import LABEL_LAB
from lab.plan.routes import ROUTE_SCRIPT
from lab.plan.seal import SEAL_FILE
from lab.runtime.engine import NodeFailed
from lab.runtime.objects import read_lab_file



def needs_outside_routes(container) -> bool:
    capabilities = container.attrs.get("HostConfig", {}).get("CapAdd") or []
    return not any(cap.upper().removeprefix("CAP_") == "NET_ADMIN" for cap in capabilities)


def install_routes(client: docker.DockerClient, container, node: str) -> None:
    """Give a running node without NET_ADMIN the seal in its /lab/seal.rules and the routes
    in its /lab/routes."""
    if not needs_outside_routes(container):
        return
    routes = read_lab_file(container, "routes")
    seal = read_lab_file(container, SEAL_FILE)
    try:
        client.containers.run(
            container.image.id, entrypoint=["/bin/sh", "-c", ROUTE_SCRIPT], command=[],
            environment={"LAB_ROUTES": routes, "LAB_SEAL": seal}, network_mode=f"container:{container.id}",
            cap_add=["NET_ADMIN"], remove=True, detach=False,
            labels={LABEL_LAB: container.labels.get(LABEL_LAB, ""), "lab.role": "route-helper"})
    except docker.errors.ContainerError as error:
        stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else str(error.stderr)
        raise NodeFailed(node, f"its routes could not be installed: {stderr.strip()}") from error
    except docker.errors.APIError as error:
        raise NodeFailed(node, f"its routes could not be installed: {error.explanation}") from error
