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
from dataclasses import dataclass

import docker

from lab.plan.model import LABEL_LAB
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL6_FILE, SEAL_FILE
from lab.errors import RuntimeFailure
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed, run_command
from lab.backends.docker.helpers import LABEL_ROLE, namespace_helper
from lab.backends.docker.lab_files import files_from_environment
from lab.backends.docker.objects import is_summary

ROUTE_HELPER = "route-helper"
# Every node without NET_ADMIN waits for its routes before its service starts, so the
# helper's scripts (they stay in its cgroup inside the nodes' namespaces) are the critical
# path: when CPU is short (many nodes starting, apps loading Python) they go first.
ROUTE_HELPER_CPU_SHARES = 16 * 1024   # a container's default weight is 1024
__all__ = ["LABEL_ROLE", "ROUTE_HELPER", "RouteInstaller", "install_routes", "needs_outside_routes",
           "with_routes_check"]

# Run in the helper with "$1" the node's process id and "$2" its container id. The id check
# makes sure the process is still the node's (a process id is reused once it has exited).
# The node's routes and seals: from the runtime, in this exec's environment (LAB_GIVEN_<id>,
# LAB_ROUTES_<id>, LAB_SEAL_<id>, LAB_SEAL6_<id>) for a node that got its files in its own
# environment (lab_files.py: it may not have unpacked them yet); else read from the node's
# /lab inside its namespaces. The seal goes in first (ROUTE_SCRIPT, passed in
# $LAB_ROUTE_SCRIPT). Then it wakes lab-init, which sleeps on /run/lab/routes.fifo until its
# routes are there (services/base/lib/wait.sh's lab_wake: a non-blocking write, nothing
# happens when nobody waits).
ENTER_NODE = r"""
grep -q "$2" "/proc/$1/cgroup" 2>/dev/null || { echo "the node's process $1 is gone" >&2; exit 1; }
eval "given=\${LAB_GIVEN_$2-}"
if [ -n "$given" ]; then
  eval "LAB_ROUTES=\${LAB_ROUTES_$2-} LAB_SEAL=\${LAB_SEAL_$2-} LAB_SEAL6=\${LAB_SEAL6_$2-}"
  export LAB_ROUTES LAB_SEAL LAB_SEAL6 LAB_GIVEN=yes
fi
exec nsenter -t "$1" -m -n /bin/sh -c '
if [ -z "${LAB_GIVEN:-}" ]; then
  LAB_ROUTES=$(cat /lab/routes 2>/dev/null || true)
  LAB_SEAL=$(cat /lab/SEAL_FILE_NAME 2>/dev/null || true)
  LAB_SEAL6=$(cat /lab/SEAL6_FILE_NAME 2>/dev/null || true)
  export LAB_ROUTES LAB_SEAL LAB_SEAL6
fi
/bin/sh -c "$LAB_ROUTE_SCRIPT" || exit
[ ! -p /run/lab/routes.fifo ] || dd if=/dev/zero of=/run/lab/routes.fifo bs=8 count=1 oflag=nonblock conv=notrunc status=none 2>/dev/null || true'
""".replace("SEAL_FILE_NAME", SEAL_FILE).replace("SEAL6_FILE_NAME", SEAL6_FILE)
IDLE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
# Run in the helper with one "PID:ID" argument per node: every node's routes at once, in
# parallel, and one line per node, "ID STATUS PROBLEM", saying how it went.
FOR_EACH_NODE = r"""
for node in "$@"; do
  (
    problem=$(/bin/sh -c "$LAB_ENTER_NODE" routes "${node%%:*}" "${node#*:}" 2>&1 >/dev/null)
    status=$?
    printf '%s %s %s\n' "${node#*:}" "$status" "$(printf '%s' "$problem" | tr '\n' ' ')"
  ) &
done
wait
"""


@dataclass
class _Waiting:
    """A node waiting for its routes; problem is set (None: installed) when done."""

    pid: str
    container_id: str
    given: dict[str, str] | None = None   # its routes and seals, when the runtime passes them
    done: bool = False
    problem: str | None = None


def batch_outcome(stdout: str) -> dict[str, str | None]:
    """container id -> None (routes installed) or the problem, from FOR_EACH_NODE's lines."""
    outcome: dict[str, str | None] = {}
    for line in stdout.splitlines():
        container_id, status, problem = (line.split(" ", 2) + ["", ""])[:3]
        if container_id:
            outcome[container_id] = None if status == "0" else (problem.strip() or f"exit {status}")
    return outcome


def _routes_given(container) -> dict[str, str] | None:
    """ROUTES, SEAL and SEAL6 of a node created with its files in its environment."""
    files = files_from_environment(container)
    if files is None:
        return None
    return {"ROUTES": files.get("routes", ""), "SEAL": files.get(SEAL_FILE, ""), "SEAL6": files.get(SEAL6_FILE, "")}


def needs_outside_routes(container) -> bool:
    if is_summary(container):
        container.reload()   # a list's entry does not say which capabilities it has
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
        self._queue = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._busy = False   # a batch is being installed

    def _helper_for(self, image: str):
        with self._lock:
            if self._helper is None:
                context = namespace_helper(self.client, self.lab, ROUTE_HELPER, image, IDLE, "none",
                                           ["NET_ADMIN", "SYS_ADMIN"], pid_mode="host",
                                           cpu_shares=ROUTE_HELPER_CPU_SHARES)
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
        routes in its /lab/routes (a node with NET_ADMIN sets its own).

        Nodes are installed in batches, one exec each: while one batch runs, the nodes that
        start meanwhile wait, and the first of them then takes them all. An exec costs the
        engine far more than a node's script, so a hundred nodes starting together pay a
        few execs, not a hundred queued ones."""
        if not needs_outside_routes(container):
            return
        image = container.attrs.get("Image") or container.image.id
        me = _Waiting(str(container.attrs.get("State", {}).get("Pid", 0)), container.id,
                      given=_routes_given(container))
        with self._queue:
            self._waiting.append(me)
            while self._busy and not me.done:
                self._queue.wait()
            batch = [] if me.done else self._take_batch()
        if batch:
            self._install_batch(image, batch)
        if me.problem is not None:
            raise NodeFailed(node, f"its routes could not be installed: {me.problem}")

    def _take_batch(self) -> list[_Waiting]:
        batch, self._waiting, self._busy = self._waiting, [], True
        return batch

    def _install_batch(self, image: str, batch: list[_Waiting]) -> None:
        problems = {w.container_id: "the route helper gave no answer for it" for w in batch}
        try:
            problems.update(self._run_batch(image, batch))
        except ENGINE_ERRORS as error:
            problems = dict.fromkeys(problems, str(getattr(error, "explanation", None) or error))
        except RuntimeFailure as error:
            problems = dict.fromkeys(problems, str(error))
        finally:   # whatever happened, every waiting node hears about it
            with self._queue:
                for waiting in batch:
                    waiting.problem, waiting.done = problems[waiting.container_id], True
                self._busy = False
                self._queue.notify_all()

    def _run_batch(self, image: str, batch: list[_Waiting]) -> dict[str, str | None]:
        helper = self._helper_for(image)
        nodes = [f"{w.pid}:{w.container_id}" for w in batch]
        environment = {"LAB_ROUTE_SCRIPT": ROUTE_SCRIPT, "LAB_ENTER_NODE": ENTER_NODE}
        for waiting in batch:
            if waiting.given is not None:
                environment.update({f"LAB_{name}_{waiting.container_id}": value
                                    for name, value in {"GIVEN": "yes", **waiting.given}.items()})
        result = run_command(helper, ["/bin/sh", "-c", FOR_EACH_NODE, "routes", *nodes], environment=environment)
        return batch_outcome(result.stdout.decode(errors="replace"))

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
