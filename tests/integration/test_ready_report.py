"""A node of a lab image says in its log when its probe passed; the runtime follows the log.

Real containers of the base image (lab-entrypoint, lab-init, lab-ready-report), started and
waited for by the runtime's own start_and_wait. What each test checks independently: the
engine's request log (no exec was asked for), the clock, and the node's own log lines.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import threading
import time

import docker
import pytest

from lab.backends.docker.engine import NodeFailed
from lab.backends.docker.images import ensure_lab_base
from lab.backends.docker.netns import RouteInstaller
from lab.backends.docker.readiness import Cancelled, start_and_wait
from lab.backends.docker.ready_report import LABEL_READY_REPORT, READY_PROBE_FILE
from lab.plan.model import Probe
from tests.engine_requests import counted

pytestmark = pytest.mark.integration

TEST_LABEL = "lab.test=ready-report"


@pytest.fixture(scope="module")
def client(engine):
    """The session's engine (tests/integration/conftest.py); this module's nodes go at its end."""
    yield engine
    for container in engine.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True)


@pytest.fixture(scope="module")
def image(client) -> str:
    return ensure_lab_base(client)


def _node(client, image: str, script: str, probe: tuple[str, ...], **options):
    """A created node (network none, so it needs no routes) running script as its service."""
    container = client.containers.create(image, ["sh", "-c", script], network_mode="none",
                                         cap_add=["NET_ADMIN"],   # sets its own routes: no helper
                                         labels={"lab.test": "ready-report", LABEL_READY_REPORT: "1"},
                                         **options)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = (shlex.join(probe) + "\n").encode()
        info = tarfile.TarInfo(f"lab/{READY_PROBE_FILE}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buffer.getvalue())
    return container


def _start(client, container, probe: Probe, cancel=None) -> float:
    with RouteInstaller(client, "ready-report-test") as routes:
        return start_and_wait(routes, container, "n1", probe, cancel)


def test_ready_when_the_node_says_so_and_no_exec_is_asked(client, image):
    node = _node(client, image, "sleep 1.5; touch /tmp/ok; exec sleep infinity", ("test", "-e", "/tmp/ok"))
    began = time.monotonic()
    with counted(client) as requests:
        _start(client, node, Probe(("test", "-e", "/tmp/ok"), 30, "/tmp/ok exists"))
    assert time.monotonic() - began >= 1.5        # not before the probe could pass
    assert not [s for s in requests.shapes if "/exec" in s], requests.shapes
    node.reload()
    assert "lab-ready: passed" in node.logs().decode()


def test_a_probe_that_never_passes_is_not_ready_after_its_time(client, image):
    node = _node(client, image, "exec sleep infinity", ("false",))
    began = time.monotonic()
    with pytest.raises(NodeFailed, match=r"not ready after 3 s \(waiting for: never\)"):
        _start(client, node, Probe(("false",), 3, "never"))
    assert 3 <= time.monotonic() - began < 15
    assert "lab-ready: passed" not in node.logs().decode()


def test_a_node_that_exits_while_starting_is_named_with_its_status(client, image):
    node = _node(client, image, "sleep 1; exit 7", ("false",))
    began = time.monotonic()
    with pytest.raises(NodeFailed, match="exited with status 7 while starting"):
        _start(client, node, Probe(("false",), 60, "never"))
    assert time.monotonic() - began < 30          # the log's end said so, not the time limit


def test_a_cancelled_run_stops_waiting_at_once(client, image):
    node = _node(client, image, "exec sleep infinity", ("false",))
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(Cancelled):
        _start(client, node, Probe(("false",), 60, "never"), cancel)
    assert time.monotonic() - began < 10


def test_an_earlier_starts_ready_line_does_not_count(client, image):
    # First start: the probe passes and the log says so. Then, while the node is stopped, the
    # file that makes its probe fail goes in: the second start's probe cannot pass, and the
    # old line is in the same log: the runtime must read only what this start wrote.
    probe = ("test", "!", "-e", "/var/tmp/second")
    node = _node(client, image, "exec sleep infinity", probe)
    _start(client, node, Probe(probe, 30, "first start"))
    node.stop(timeout=1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("var/tmp/second"), io.BytesIO(b""))
    node.put_archive("/", buffer.getvalue())
    with pytest.raises(NodeFailed, match="not ready after 3 s"):
        _start(client, node, Probe(probe, 3, "second start"))
    assert node.logs().decode().count("lab-ready: passed") == 1


def test_a_log_the_engine_cannot_give_back_falls_back_to_the_exec_probe(client, image):
    # Log driver "none": the engine refuses to read the log; the probe is then run by exec.
    node = _node(client, image, "sleep 1; touch /tmp/ok; exec sleep infinity", ("test", "-e", "/tmp/ok"),
                 log_config=docker.types.LogConfig(type="none"))
    with counted(client) as requests:
        _start(client, node, Probe(("test", "-e", "/tmp/ok"), 30, "/tmp/ok exists"))
    assert any("/exec" in s for s in requests.shapes), requests.shapes
    assert node.exec_run(["test", "-e", "/tmp/ok"]).exit_code == 0
