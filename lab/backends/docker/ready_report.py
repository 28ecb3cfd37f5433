"""Readiness told by the node itself, in its log: no exec per node.

A node started from a lab image, with its kind's probe left in /lab/ready-probe, tries
that probe itself once lab-init is done (services/base/bin/lab-ready-report) and prints
"lab-ready: passed" when it exits 0. The runtime follows the container's log from the
moment the engine started it (older lines are an earlier start's) and waits for that
line: one streamed request the engine answers as lines arrive, where polling the probe
by exec cost the engine about 40 ms of CPU per try (four CPU-seconds for a hundred nodes
on two cores). A container that stops ends the stream; the probe's time limit and a
cancelled run close it.
"""

from __future__ import annotations

import datetime as dt
import shlex
import threading
import time

from lab.plan.model import ContainerPlan
from lab.backends.docker.engine import ENGINE_ERRORS

LABEL_READY_REPORT = "lab.ready-report"   # on a container whose node reports its readiness
READY_PROBE_FILE = "ready-probe"          # under /lab: the probe, as a shell command line
READY_LINE = b"lab-ready: passed"
WATCH_SECONDS = 0.25                      # how often the watchdog looks at the clock and the cancel


def reports_ready(plan: ContainerPlan) -> bool:
    """A node of a lab image (its kind's services/ folder, not an image of the user's own)
    runs lab-entrypoint, which starts the reporter."""
    return bool(plan.service) and plan.image is None and bool(plan.probe.command)


def ready_files(plan: ContainerPlan) -> dict[str, str]:
    """The files that make the node report its readiness (none when it cannot)."""
    return {READY_PROBE_FILE: probe_line(plan.probe.command) + "\n"} if reports_ready(plan) else {}


def probe_line(command: tuple[str, ...]) -> str:
    """The probe as the shell command line lab-ready-report evaluates: a `sh -c SCRIPT`
    probe is its SCRIPT (evaluated as it is, no shell started for it on every try)."""
    if len(command) == 3 and command[:2] == ("sh", "-c"):
        return command[2]
    return shlex.join(command)


def started_at(container) -> float:
    """The engine's own time of the container's last start, as seconds since the epoch."""
    text = container.attrs.get("State", {}).get("StartedAt", "")
    whole, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    moment = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc)
    return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def wait_for_report(container, deadline: float, cancel: threading.Event | None) -> bool:
    """True once the node's log says it is ready; False when the log ends (the container
    stopped), the deadline (time.monotonic()) passes, cancel is set, or the engine cannot
    give the log back (then the caller's exec probe decides)."""
    try:
        stream = container.client.api.logs(container.id, stream=True, follow=True, stdout=True, stderr=False,
                                           since=started_at(container))
    except ENGINE_ERRORS:
        return False   # a log driver the engine cannot read back ("none", syslog): the exec probe answers
    except ValueError:
        return False   # no start time recorded: the same
    finished = threading.Event()

    def watchdog() -> None:
        while not finished.wait(WATCH_SECONDS):
            if time.monotonic() > deadline or (cancel is not None and cancel.is_set()):
                stream.close()   # ends the blocked read below
                return

    threading.Thread(target=watchdog, daemon=True, name="lab-ready-watchdog").start()
    seen = b""
    try:
        for chunk in stream:
            seen = (seen + chunk)[-4096:]
            if READY_LINE in seen:
                return True
        return False
    except Exception:   # the stream closed under the read (a watchdog's close): not ready
        return False
    finally:
        finished.set()
        stream.close()
