"""Installing nodes' routes from outside, for nodes that may not change their own.

Only routers and firewalls get NET_ADMIN. Every other node's seal rules and
routes are set from outside: the engine's default route is replaced with the
lab's routes, and the node's own start-up (lab-init) waits for them before its
service starts, so nothing ever runs on the engine's routes.

One helper per run does it for every node (RouteInstaller): a container with
the host's process namespace and NET_ADMIN + SYS_ADMIN, made from the lab's base
image, that reads requests on its standard input, one line per node (the routes
and seals the node was created with), and for each enters the node's network
namespace only (nsenter, by the node's process id) and runs its own route script
and programs there. A line costs far less than an exec (helper_channel.py). The
helper carries the lab's label and the route helper role: whoever made it
removes it (up's end, its rollback, a signal), and `lab up`'s tidying and
`lab down` remove one a killed run left.
"""

from __future__ import annotations

import base64
import threading
import time

import docker

from lab.plan.model import LABEL_LAB
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL6_FILE, SEAL_FILE
from lab.errors import LabError, RuntimeFailure
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed
from lab.backends.docker.helper_channel import LineChannel
from lab.backends.docker.helpers import LABEL_ROLE, namespace_helper
from lab.backends.docker.lab_files import ROUTE_FILES, files_from_environment
from lab.backends.docker.images import ensure_lab_base
from lab.backends.docker.objects import is_summary, read_lab_file

ROUTE_HELPER = "route-helper"
# Every node without NET_ADMIN waits for its routes before its service starts, so the
# helper's scripts (they stay in its cgroup inside the nodes' namespaces) are the critical
# path: when CPU is short (many nodes starting, apps loading Python) they go first.
ROUTE_HELPER_CPU_SHARES = 16 * 1024   # a container's default weight is 1024
__all__ = ["LABEL_ROLE", "ROUTE_HELPER", "RouteInstaller", "install_routes", "needs_outside_routes",
           "with_routes_check"]

# Run in the helper with "$1" the node's process id and "$2" its container id, the node's
# routes and seals in LAB_ROUTES, LAB_SEAL and LAB_SEAL6 (from the runtime: what the node was
# created with, never what its own files say now). The id check makes sure the process is
# still the node's (a process id is reused once it has exited). Only the node's network
# namespace is entered, and only the helper's own programs run there: nothing of the node's
# (a program it replaced, a link in its files) ever runs or is opened with the helper's
# privileges. The seal goes in first (ROUTE_SCRIPT, passed in $LAB_ROUTE_SCRIPT), then the
# routes; then lab-init, which waits for them, is woken by a signal it ignores until it
# waits (SIGWINCH; services/base/bin/lab-init). Shell builtins and /proc only, where they do:
# at a hundred nodes starting, every program started here costs the CPU they share (a pkill
# reads every process on the machine).
ENTER_NODE = r"""
node=""
while IFS= read -r line; do case "$line" in *"$2"*) node=yes ;; esac; done 2>/dev/null < "/proc/$1/cgroup"
[ -n "$node" ] || { echo "the node's process $1 is gone" >&2; exit 1; }
nsenter -t "$1" -n /bin/sh -c "$LAB_ROUTE_SCRIPT" || exit
wake() {   # lab-init among the node's first three generations of processes (tini's child's, mostly)
  kids=""
  read -r kids 2>/dev/null < "/proc/$1/task/$1/children"   # one line, no newline: read says 1
  for kid in $kids; do
    comm=""
    read -r comm 2>/dev/null < "/proc/$kid/comm" || continue
    if [ "$comm" = lab-init ]; then kill -WINCH "$kid" 2>/dev/null; elif [ "$2" -lt 3 ]; then wake "$kid" $(($2 + 1)); fi
  done
}
wake "$1" 1
"""
# The helper's own process: one request per line on its stdin, "PID ID ROUTES SEAL SEAL6"
# (the last three base64, "-" when empty), each served at once in the background; one line
# per request on stdout, "ID STATUS PROBLEM", saying how it went.
SERVE = r"""
trap 'exit 0' TERM INT
decode() { [ "$1" = - ] || printf '%s' "$1" | base64 -d; }
while read -r pid id routes seal seal6; do
  [ -n "$id" ] || continue
  (
    LAB_ROUTES=$(decode "$routes") LAB_SEAL=$(decode "$seal") LAB_SEAL6=$(decode "$seal6")
    export LAB_ROUTES LAB_SEAL LAB_SEAL6
    problem=$(/bin/sh -c "$LAB_ENTER_NODE" routes "$pid" "$id" 2>&1 >/dev/null)
    status=$?
    [ -z "$problem" ] || problem=$(printf '%s' "$problem" | tr '\n' ' ')
    printf '%s %s %.1000s\n' "$id" "$status" "$problem"
  ) &
done
wait
"""
ANSWER_SECONDS = 120   # a node whose routes are not in by then is told so
CANCEL_LOOK_SECONDS = 0.25   # how often a node waiting for its answer looks at the run's cancel


def parse_answer(line: str) -> tuple[str, str | None] | None:
    """(container id, None when its routes are in, else the problem) from one of SERVE's lines."""
    container_id, status, problem = (line.split(" ", 2) + ["", ""])[:3]
    if not container_id:
        return None
    return container_id, None if status == "0" else (problem.strip() or f"exit {status}")


def request_line(pid: str, container_id: str, given: dict[str, str]) -> str:
    """A request for SERVE: the node's process and container, its routes and seals."""
    fields = [base64.b64encode(given.get(name, "").encode()).decode() or "-" for name in ("ROUTES", "SEAL", "SEAL6")]
    return f"{pid} {container_id} {' '.join(fields)}"


def _routes_given(container) -> dict[str, str]:
    """ROUTES, SEAL and SEAL6 of a node, from its creation (lab_files.py), which nothing in
    the node can change; a node made before lab put them there: from its /lab."""
    files = files_from_environment(container)
    if files is None:
        files = {path: read_lab_file(container, path) for path in ROUTE_FILES}
    return {"ROUTES": files.get("routes", ""), "SEAL": files.get(SEAL_FILE, ""), "SEAL6": files.get(SEAL6_FILE, "")}


def needs_outside_routes(container) -> bool:
    if is_summary(container):
        container.reload()   # a list's entry does not say which capabilities it has
    capabilities = container.attrs.get("HostConfig", {}).get("CapAdd") or []
    return not any(cap.upper().removeprefix("CAP_") == "NET_ADMIN" for cap in capabilities)


class RouteInstaller:
    """Installs routes for the nodes of one lab through one helper, made at the first node
    that needs it and removed by close() (use it as a context manager).

    Each node is one line written to the helper's stdin and one line read back from its
    stdout, through one attach connection (helper_channel.py): no exec per node or batch."""

    def __init__(self, client: docker.DockerClient, lab: str):
        self.client = client
        self.lab = lab
        self._lock = threading.Lock()
        self._context = None
        self._channel: LineChannel | None = None
        self._answers = threading.Condition()
        self._asked: dict[str, int] = {}             # container id -> the helper asked (generation)
        self._answers_for: dict[str, str | None] = {}   # container id -> None or the problem
        self._ended = False
        self._generation = 0   # which helper is the current one

    def _channel_for(self) -> LineChannel:
        with self._lock:
            if self._channel is not None and self._ended:   # it died (killed, OOM): a new one
                self._drop_helper()
            if self._channel is None:
                # The lab's base image, whatever the node's: the helper runs its own programs.
                image = ensure_lab_base(self.client)
                context = namespace_helper(self.client, self.lab, ROUTE_HELPER, image, SERVE, "none",
                                           ["NET_ADMIN", "SYS_ADMIN"], pid_mode="host",
                                           cpu_shares=ROUTE_HELPER_CPU_SHARES, stdin_open=True,
                                           environment={"LAB_ROUTE_SCRIPT": ROUTE_SCRIPT,
                                                        "LAB_ENTER_NODE": ENTER_NODE})
                helper, _ = context.__enter__()
                with self._answers:
                    self._ended = False
                    self._generation += 1
                    generation = self._generation
                try:
                    self._channel = LineChannel(self.client.api, helper.id, self._on_line,
                                                lambda: self._on_end(generation))
                except ENGINE_ERRORS as error:
                    context.__exit__(None, None, None)   # no channel, no helper
                    raise RuntimeFailure(f"cannot talk to the route helper: {error}") from error
                self._context = context
            return self._channel

    def prepare(self) -> None:
        """Make the helper now (in a worker, while the networks and first nodes are made), so no node
        waits for it; a failure here is left for install() to meet and report."""
        try:
            self._channel_for()
        except (LabError, *ENGINE_ERRORS):
            pass

    def _on_line(self, line: str) -> None:
        answer = parse_answer(line)
        if answer is None:
            return
        with self._answers:
            if answer[0] in self._asked:
                self._answers_for[answer[0]] = answer[1]
                self._answers.notify_all()

    def _on_end(self, generation: int) -> None:
        with self._answers:
            for container_id, asked in self._asked.items():
                if asked == generation and container_id not in self._answers_for:
                    self._answers_for[container_id] = "the route helper ended before it answered"
            if generation == self._generation:   # not a helper already replaced
                self._ended = True
            self._answers.notify_all()

    def install(self, container, node: str, cancel: threading.Event | None = None) -> None:
        """Give a running node without NET_ADMIN the seal in its /lab/seal.rules, then the
        routes in its /lab/routes (a node with NET_ADMIN sets its own). cancel set (the run
        is being undone) ends the wait for the helper's answer."""
        if not needs_outside_routes(container):
            return
        problem = self._ask(container, cancel)
        if problem is not None:
            raise NodeFailed(node, f"its routes could not be installed: {problem}")

    def _ask(self, container, cancel: threading.Event | None) -> str | None:
        pid = str(container.attrs.get("State", {}).get("Pid", 0))
        try:
            channel = self._channel_for()
            with self._answers:
                self._asked[container.id] = self._generation
            line = request_line(pid, container.id, _routes_given(container))
        except ENGINE_ERRORS as error:
            return self._forget(container.id, str(getattr(error, "explanation", None) or error))
        except (LabError, OSError) as error:
            return self._forget(container.id, str(error))
        try:
            channel.send(line)
        except OSError as error:
            self._discard(channel)
            return self._forget(container.id, str(error))
        deadline = time.monotonic() + ANSWER_SECONDS
        with self._answers:
            while container.id not in self._answers_for:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._forget(container.id, f"the route helper gave no answer within {ANSWER_SECONDS} s")
                if cancel is not None and cancel.is_set():
                    return self._forget(container.id, "the run is being undone")
                self._answers.wait(min(left, CANCEL_LOOK_SECONDS))
        return self._forget(container.id, None)

    def _discard(self, channel: LineChannel) -> None:
        """A helper whose stdin may hold half a request would read the next one wrong: it is
        removed (the nodes still waiting on it are told) and the next request makes a new one."""
        with self._lock:
            if self._channel is channel:
                self._drop_helper()

    def _forget(self, container_id: str, problem: str | None) -> str | None:
        """The answer for a node (its own, when problem is None), forgetting the request."""
        with self._answers:
            self._asked.pop(container_id, None)
            answered = self._answers_for.pop(container_id, None)
        return problem if problem is not None else answered

    def close(self) -> None:
        """Remove the helper (idempotent); a later install makes a new one."""
        with self._lock:
            self._drop_helper()

    def _drop_helper(self) -> None:
        context, channel, self._context, self._channel = self._context, self._channel, None, None
        if channel is not None:
            channel.close()
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
