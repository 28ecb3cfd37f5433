"""Installing nodes' routes from outside, for nodes that may not change their own.

Only routers and firewalls get NET_ADMIN. Every other node's seal rules and
routes are set from outside: the engine's default route is replaced with the
lab's routes, and the node's own start-up (lab-init) waits for them before its
service starts, so nothing ever runs on the engine's routes.

One helper per run does it for every node (RouteInstaller): a container with
the host's process namespace and NET_ADMIN + SYS_ADMIN that idles, and for
each node one exec that enters the node's mount and network namespaces
(nsenter, by the node's process id) and runs the route script there on the
node's own /lab files. An exec costs a fraction of a container's create,
start, wait and removal. The helper carries the lab's label and the route
helper role: whoever made it removes it (up's end, its rollback, a signal),
and `lab up`'s tidying and `lab down` remove one a killed run left.
"""

from __future__ import annotations

import threading

import docker

from lab.plan.model import LABEL_LAB
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL6_FILE, SEAL_FILE
from lab.errors import RuntimeFailure
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed
from lab.backends.docker.helpers import LABEL_ROLE, namespace_helper

ROUTE_HELPER = "route-helper"
__all__ = ["LABEL_ROLE", "ROUTE_HELPER", "RouteInstaller", "install_routes", "needs_outside_routes",
           "with_routes_check"]

# Run in the helper with "$1" the node's process id and "$2" its container id. The id check
# makes sure the process is still the node's (a process id is reused once it has exited).
# Inside the node's namespaces it reads the node's own /lab files; the seal goes in first
# (ROUTE_SCRIPT, passed in $LAB_ROUTE_SCRIPT).
ENTER_NODE = r"""
grep -q "$2" "/proc/$1/cgroup" 2>/dev/null || { echo "the node's process $1 is gone" >&2; exit 1; }
exec nsenter -t "$1" -m -n /bin/sh -c '
LAB_ROUTES=$(cat /lab/routes 2>/dev/null || true)
LAB_SEAL=$(cat /lab/SEAL_FILE_NAME 2>/dev/null || true)
LAB_SEAL6=$(cat /lab/SEAL6_FILE_NAME 2>/dev/null || true)
export LAB_ROUTES LAB_SEAL LAB_SEAL6
exec /bin/sh -c "$LAB_ROUTE_SCRIPT"'
""".replace("SEAL_FILE_NAME", SEAL_FILE).replace("SEAL6_FILE_NAME", SEAL6_FILE)
IDLE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


def needs_outside_routes(container) -> bool:
    capabilities = container.attrs.get("HostConfig", {}).get("CapAdd") or []
    return not any(cap.upper().removeprefix("CAP_") == "NET_ADMIN" for cap in capabilities)


class RouteInstaller:
    """Installs routes for the nodes of one lab through one helper, made at the first node
    that needs it and removed by close() (use it as a context manager)."""

    def __init__(self, client: docker.DockerClient, lab: str):
        self.client = client
        self.lab = lab
        self._lock = threading.Lock()
        self._context = None
        self._helper = None

    def _helper_for(self, image: str):
        with self._lock:
            if self._helper is None:
                context = namespace_helper(self.client, self.lab, ROUTE_HELPER, image, IDLE, "none",
                                           ["NET_ADMIN", "SYS_ADMIN"], pid_mode="host")
                self._helper, _ = context.__enter__()
                self._context = context
            return self._helper

    def prepare(self, image: str) -> None:
        """Make the helper now (in a worker, while the first nodes are created), so no node
        waits for it; a failure here is left for install() to meet and report."""
        try:
            self._helper_for(image)
        except RuntimeFailure:
            pass

    def install(self, container, node: str) -> None:
        """Give a running node without NET_ADMIN the seal in its /lab/seal.rules, then the
        routes in its /lab/routes (a node with NET_ADMIN sets its own)."""
        if not needs_outside_routes(container):
            return
        try:
            helper = self._helper_for(container.attrs.get("Image") or container.image.id)
            pid = str(container.attrs.get("State", {}).get("Pid", 0))
            result = helper.exec_run(["/bin/sh", "-c", ENTER_NODE, "routes", pid, container.id],
                                     environment={"LAB_ROUTE_SCRIPT": ROUTE_SCRIPT}, demux=True)
        except ENGINE_ERRORS as error:
            raise NodeFailed(node, "its routes could not be installed: "
                             f"{getattr(error, 'explanation', None) or error}") from error
        if result.exit_code != 0:
            stderr = (result.output[1] or b"").decode(errors="replace").strip()
            raise NodeFailed(node, f"its routes could not be installed: {stderr or f'exit {result.exit_code}'}")

    def close(self) -> None:
        """Remove the helper (idempotent); a later install makes a new one."""
        with self._lock:
            context, self._context, self._helper = self._context, None, None
        if context is not None:
            context.__exit__(None, None, None)

    def __enter__(self) -> "RouteInstaller":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def install_routes(client: docker.DockerClient, container, node: str) -> None:
    """One node's routes, with a helper of its own (a single node: `lab start`, tests)."""
    with RouteInstaller(client, container.labels.get(LABEL_LAB, "")) as routes:
        routes.install(container, node)


# Exits 0 when every line of /lab/routes is in the node's table (as lab-init checks at start).
ROUTES_IN_PLACE = r"""
[ -f /lab/routes ] || exit 0
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; *:*) family=-6 ;; *) family=-4 ;; esac
  set -- $line
  ip $family route show "$1" | grep -q "via $3 " || exit 1
done < /lab/routes
"""


def with_routes_check(container, command: list[str]) -> list[str]:
    """command, preceded (in the same exec: one engine round trip) by the check that a node
    getting its routes from outside has them all (after a killed run it may not)."""
    if not needs_outside_routes(container):
        return command
    # The check runs in a subshell: its `set --` must not clobber the probe's words in "$@".
    return ["/bin/sh", "-c", f'( {ROUTES_IN_PLACE} ) || exit 1\n[ "$#" -eq 0 ] || exec "$@"', "check", *command]
