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
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL_FILE
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed
from lab.backends.docker.objects import read_lab_file, remove_container

LABEL_ROLE = "lab.role"
ROUTE_HELPER = "route-helper"



def needs_outside_routes(container) -> bool:
    capabilities = container.attrs.get("HostConfig", {}).get("CapAdd") or []
    return not any(cap.upper().removeprefix("CAP_") == "NET_ADMIN" for cap in capabilities)


def install_routes(client: docker.DockerClient, container, node: str) -> None:
    """Give a running node without NET_ADMIN the seal in its /lab/seal.rules and the routes
    in its /lab/routes.

    The helper is removed by this function whatever happens (a failure, an
    interrupt): it is created, run and removed under one try/finally, never
    left in state Created for `lab down` to find."""
    if not needs_outside_routes(container):
        return
    routes = read_lab_file(container, "routes")
    seal = read_lab_file(container, SEAL_FILE)
    helper = None
    try:
        helper = client.containers.create(
            container.image.id, entrypoint=["/bin/sh", "-c", ROUTE_SCRIPT], command=[],
            environment={"LAB_ROUTES": routes, "LAB_SEAL": seal}, network_mode=f"container:{container.id}",
            cap_add=["NET_ADMIN"], detach=True,
            labels={LABEL_LAB: container.labels.get(LABEL_LAB, ""), LABEL_ROLE: ROUTE_HELPER})
        helper.start()
        status = helper.wait(timeout=60).get("StatusCode", 1)
        if status != 0:
            stderr = helper.logs(stdout=False, stderr=True).decode(errors="replace").strip()
            raise NodeFailed(node, f"its routes could not be installed: {stderr or f'exit {status}'}")
    except ENGINE_ERRORS as error:
        raise NodeFailed(node, "its routes could not be installed: "
                         f"{getattr(error, 'explanation', None) or error}") from error
    finally:
        if helper is not None:
            remove_container(helper)


# Exits 0 when every line of /lab/routes is in the node's table (as lab-init checks at start).
ROUTES_IN_PLACE = r"""
[ -f /lab/routes ] || exit 0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  set -- $line
  ip route show "$1" | grep -q "via $3 " || exit 1
done < /lab/routes
"""


def with_routes_check(container, command: list[str]) -> list[str]:
    """command, preceded (in the same exec: one engine round trip) by the check that a node
    getting its routes from outside has them all (after a killed run it may not)."""
    if not needs_outside_routes(container):
        return command
    # The check runs in a subshell: its `set --` must not clobber the probe's words in "$@".
    return ["/bin/sh", "-c", f'( {ROUTES_IN_PLACE} ) || exit 1\n[ "$#" -eq 0 ] || exec "$@"', "check", *command]
