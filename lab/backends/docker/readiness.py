"""Starting a node and waiting until it really serves (its kind's probe passes)."""

from __future__ import annotations

import threading
import time


from lab.plan.model import Probe
from lab.errors import RuntimeFailure
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed, run_command
from lab.backends.docker.netns import RouteInstaller
from lab.backends.docker.objects import log_tail, probe_command
from lab.backends.docker.ready_report import LABEL_READY_REPORT, wait_for_report

# The probe is polled inside the node, by one exec that tries it again and again for up to
# about two seconds: starts fast (a few milliseconds: most services are ready within a
# second, many at once), backs off to a gentle pace, and costs the engine one exec per slice
# instead of one per try (at a hundred nodes starting, execs polled from outside ate the CPU
# the services needed to start).
# A lab image's service starts when lab-init is done (its marker /run/lab/init-done), often
# seconds after the container: the slice first waits for that marker, so the probe's quick
# first tries meet the service starting, not lab-init still at work with the probe already
# backed off to its gentle pace. It sleeps on /run/lab/init.fifo, which lab-init writes to
# when done (services/base/lib/wait.sh): a tick of `sleep` and a check cost 1.3 ms of CPU
# every 20 ms per node, and at a hundred nodes starting those ticks ate the CPU they needed.
IN_NODE_PAUSES = "0.005 0.01 0.02 0.04 0.08 0.15 0.25 0.25 0.25 0.25 0.25 0.25"
MAX_POLL_SECONDS = 0.25
INIT_WAIT_SLICES = 2   # of at most a second (LAB_WAIT_SLICE): two seconds per probe exec
POLL_IN_NODE = f"""
if [ -r /usr/local/lib/lab/wait.sh ] && [ -x /usr/local/bin/lab-init ]; then
  . /usr/local/lib/lab/wait.sh
  lab_wait_init {INIT_WAIT_SLICES}
fi
for pause in {IN_NODE_PAUSES}; do
  "$@" >/dev/null 2>&1 && exit 0
  sleep "$pause"
done
"$@" >/dev/null 2>&1
"""


def polled_in_node(command: list[str]) -> list[str]:
    """command, retried inside the node for one slice (exit 0 as soon as it passes)."""
    return ["/bin/sh", "-c", POLL_IN_NODE, "probe", *command]


class Cancelled(RuntimeFailure):
    """Waiting stopped because the run is being cancelled (another node failed, or a signal)."""


def _check_cancel(cancel: threading.Event | None, node: str) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"node '{node}': stopped waiting, the run is being cancelled")


def probe_passes(container, command: list[str]) -> bool:
    if not command:
        return True
    try:
        return run_command(container, command).exit_code == 0
    except ENGINE_ERRORS:
        return False  # e.g. the container is restarting: not ready


def wait_until_ready(container, node: str, probe: Probe, cancel: threading.Event | None = None,
                     just_read: bool = False, began: float | None = None) -> float:
    """Seconds until the probe passed; NodeFailed if the container exits or time runs out.
    just_read: the container's state was read a moment ago (its first try skips the read).
    began: when the wait began (time.monotonic()), if before this call."""
    started = time.monotonic() if began is None else began
    command = list(probe.command) or probe_command(container)
    polled = polled_in_node(command) if command else command
    while True:
        _check_cancel(cancel, node)
        try:
            if not just_read:
                container.reload()
            just_read = False
        except ENGINE_ERRORS as error:
            raise NodeFailed(node, f"the engine lost the container: {error}") from error
        state = container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            raise NodeFailed(node, f"its container exited with status {state.get('ExitCode')} "
                             "while starting", log_tail(container))
        tried = time.monotonic()
        if state.get("Status") == "running" and probe_passes(container, polled):
            return time.monotonic() - started
        if time.monotonic() - started > probe.timeout:
            raise NodeFailed(node, f"not ready after {probe.timeout:.0f} s (waiting for: {probe.what})",
                             log_tail(container))
        if time.monotonic() - tried < MAX_POLL_SECONDS:
            time.sleep(MAX_POLL_SECONDS)   # not running yet, or the exec was refused: no busy loop


def start_and_wait(routes: RouteInstaller, container, node: str, probe: Probe,
                   cancel: threading.Event | None = None) -> float:
    """Start a node, give it its routes if it cannot set them itself, wait until ready."""
    _check_cancel(cancel, node)
    started = time.monotonic()
    try:
        container.start()
        container.reload()
    except ENGINE_ERRORS as error:
        raise NodeFailed(node, f"the engine could not start it: {getattr(error, 'explanation', error)}",
                         log_tail(container)) from error
    routes.install(container, node, cancel)
    if container.labels.get(LABEL_READY_REPORT) == "1":
        _wait_for_reported(container, node, probe, cancel)
    else:
        wait_until_ready(container, node, probe, cancel, just_read=True)
    return time.monotonic() - started


def _wait_for_reported(container, node: str, probe: Probe, cancel: threading.Event | None) -> None:
    """Wait for a just-started node to say in its log that its probe passed (ready_report.py).
    Only for a start: a running node's log says it was ready once, not that it is now."""
    began = time.monotonic()
    if wait_for_report(container, began + probe.timeout, cancel):
        return
    # Cancelled, out of time, or the log ended: the exec probe's wait says which, from the
    # engine's record of the container (and tries the probe itself, if time is left).
    wait_until_ready(container, node, probe, cancel, began=began)
