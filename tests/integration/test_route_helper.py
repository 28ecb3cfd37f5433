"""The route helper: one line per node on its stdin, one answer per node on its stdout.

Real nodes of the base image on a network of their own, without NET_ADMIN, and the
runtime's RouteInstaller. What each test checks independently: each node's own routing
table (read by exec after the fact), the engine's request log (no exec was asked for),
the engine's list of helpers, and the clock.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from lab.backends.docker.engine import NodeFailed
from lab.backends.docker.images import ensure_lab_base
from lab.backends.docker.lab_files import FILES_ENV, environment_value
from lab.backends.docker import helper_channel, netns
from lab.backends.docker.netns import ROUTE_HELPER, RouteInstaller
from lab.backends.docker.objects import read_lab_file
from tests.engine_requests import counted

pytestmark = pytest.mark.integration

LAB = "it-route-helper"
SUBNET, GATEWAY = "198.18.248.0/24", "198.18.248.254"
TEST_LABEL = {"lab.test": "route-helper"}


@pytest.fixture(scope="module")
def client(engine):
    network = engine.networks.create(
        "it-route-helper-net", driver="bridge", labels=TEST_LABEL,
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=GATEWAY)]))
    yield engine
    for container in engine.containers.list(all=True, filters={"label": "lab.test=route-helper"}):
        container.remove(force=True)
    network.remove()


@pytest.fixture(scope="module")
def image(client) -> str:
    return ensure_lab_base(client)


def _node(client, image: str, number: int, routes: str):
    """A started node holding routes in its environment, as `lab up` makes them; its
    service is a plain sleep (its lab-init is not what is tested here)."""
    container = client.containers.run(
        image, ["sleep", "infinity"], entrypoint=[], detach=True, network="it-route-helper-net",
        name=f"it-route-helper-n{number}", labels=TEST_LABEL,
        environment={FILES_ENV: environment_value({"routes": routes})})
    container.reload()
    return container


def _table(container) -> str:
    return container.exec_run(["ip", "-4", "route", "show"]).output.decode()


def _helpers(client) -> list:
    return client.containers.list(all=True, filters={"label": [f"lab.name={LAB}", f"lab.role={ROUTE_HELPER}"]})


def test_nodes_asking_at_once_each_get_their_own_routes_and_no_exec_is_asked(client, image):
    nodes = [_node(client, image, n, f"198.19.{n}.0/24 via 198.18.248.{100 + n}\n") for n in range(8)]
    with counted(client) as requests, RouteInstaller(client, LAB) as routes:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda pair: routes.install(pair[1], f"n{pair[0]}"), enumerate(nodes)))
        assert len(_helpers(client)) == 1
    assert not [s for s in requests.shapes if "/exec" in s], requests.shapes
    for n, node in enumerate(nodes):
        table = _table(node)
        assert f"198.19.{n}.0/24 via 198.18.248.{100 + n} " in table, table
        assert "default via" not in table   # the engine's default route is gone
        others = [m for m in range(8) if m != n and f"198.19.{m}.0/24" in table]
        assert others == [], table
    assert _helpers(client) == []   # closed: the helper is gone
    for node in nodes:
        node.remove(force=True)


def test_a_refused_route_fails_its_node_with_ips_reason_and_not_the_others(client, image):
    good = _node(client, image, 20, "198.19.20.0/24 via 198.18.248.120\n")
    bad = _node(client, image, 21, "198.19.21.0/24 via 192.0.2.1\n")   # not on any link of the node
    with RouteInstaller(client, LAB) as routes:
        routes.install(good, "good")
        with pytest.raises(NodeFailed, match=r"cannot install route: 198\.19\.21\.0/24 via 192\.0\.2\.1 .*"
                                              r"(unreachable|invalid gateway)"):
            routes.install(bad, "bad")
    assert "198.19.20.0/24 via 198.18.248.120 " in _table(good)
    assert "198.19.21.0/24" not in _table(bad)


def test_a_helper_killed_under_the_runtime_is_replaced_and_the_node_still_gets_its_routes(client, image):
    node = _node(client, image, 30, "198.19.30.0/24 via 198.18.248.130\n")
    with RouteInstaller(client, LAB) as routes:
        routes.prepare()
        [first] = _helpers(client)
        first.kill()
        deadline = time.monotonic() + 10
        while first.id in [h.id for h in _helpers(client) if h.status == "running"] and time.monotonic() < deadline:
            time.sleep(0.05)
        began = time.monotonic()
        routes.install(node, "n30")
        assert time.monotonic() - began < 30
        assert [h.id for h in _helpers(client) if h.status == "running"] != [first.id]
    assert "198.19.30.0/24 via 198.18.248.130 " in _table(node)


def test_a_node_whose_helper_dies_while_it_waits_is_told_at_once(client, image):
    """The helper dies with the node's request unread: frozen (the engine's pause), its
    process killed from the host (the kill lands as it thaws, before it reads a byte)."""
    node = _node(client, image, 40, "198.19.40.0/24 via 198.18.248.140\n")
    with RouteInstaller(client, LAB) as routes:
        routes.prepare()
        [helper] = _helpers(client)
        helper.reload()
        helper.pause()
        outcome: list = []
        asker = threading.Thread(target=lambda: outcome.append(_install(routes, node)))
        asker.start()
        time.sleep(0.5)
        assert asker.is_alive()          # no answer while the helper is frozen
        os.kill(helper.attrs["State"]["Pid"], signal.SIGKILL)
        began = time.monotonic()
        helper.unpause()
        asker.join(timeout=30)
        assert not asker.is_alive() and time.monotonic() - began < 10
    assert outcome == ["node 'n40' failed: its routes could not be installed: the route helper ended before it "
                       "answered"] or "ended before it answered" in outcome[0], outcome
    assert "198.19.40.0/24" not in _table(node)


def _install(routes: RouteInstaller, node, cancel: threading.Event | None = None) -> str | None:
    try:
        routes.install(node, "n40", cancel)
        return None
    except NodeFailed as error:
        return str(error)


def test_the_helper_runs_nothing_of_the_node_and_reads_none_of_its_files(client, image):
    """A node that replaced its shell and tools (each now leaves a mark and fails) and wrote
    other routes into its /lab: the routes it was created with go in all the same, and no
    program of the node ran."""
    node = _node(client, image, 50, "198.19.50.0/24 via 198.18.248.150\n")
    tampered = ("cp /usr/bin/dash /usr/bin/dash.real && cp /usr/sbin/ip /usr/sbin/ip.real && "
                "for f in /usr/bin/dash /usr/sbin/ip /usr/sbin/iptables-restore /usr/sbin/ip6tables-restore "
                "/usr/bin/cat /usr/bin/dd /usr/bin/nsenter; do rm -f $f; "
                "printf '#!/usr/bin/dash.real\\ntouch /tmp/ran-%s\\nexit 1\\n' ${f##*/} > $f; chmod 0755 $f; done && "
                "mkdir -p /lab && echo '198.19.51.0/24 via 198.18.248.151' > /lab/routes && : > /lab/seal.rules")
    code, output = node.exec_run(["/usr/bin/dash", "-c", tampered])
    assert code == 0, output
    with RouteInstaller(client, LAB) as routes:
        routes.install(node, "n50")
    table = node.exec_run(["/usr/sbin/ip.real", "-4", "route", "show"]).output.decode()
    assert "198.19.50.0/24 via 198.18.248.150 " in table and "198.19.51.0/24" not in table, table
    marks = node.exec_run(["/usr/bin/dash.real", "-c", "for m in /tmp/ran-*; do echo $m; done"]).output.decode()
    assert marks.strip() == "/tmp/ran-*", marks   # no mark: nothing of the node's ran


@pytest.mark.parametrize("beside", [False, True], ids=["before-the-service", "beside-the-service"])
def test_lab_init_waiting_for_its_routes_is_woken_by_the_helper_at_once(client, image, beside):
    """lab-init sleeps in 30-second slices here (LAB_WAIT_SLICE): only the helper's signal
    can end its wait within seconds. lab-init runs either before the service (a child of
    lab-entrypoint) or beside it (LAB_INIT_BESIDE, as the database and the apps: a child of
    a subshell tini adopted); the helper finds it in both."""
    files = {"routes": "198.19.60.0/24 via 198.18.248.160\n", "env": "LAB_NODE=n60\nLAB_ROUTES_BY=runtime\n"}
    beside_env = {"LAB_INIT_BESIDE": "/bin/sleep"} if beside else {}
    node = client.containers.run(image, ["/bin/sleep" if beside else "sleep", "infinity"], detach=True,
                                 network="it-route-helper-net", name=f"it-route-helper-n6{int(beside)}",
                                 labels=TEST_LABEL,
                                 environment={FILES_ENV: environment_value(files), "LAB_WAIT_SLICE": "30",
                                              **beside_env})
    node.reload()
    deadline = time.monotonic() + 30
    while node.exec_run(["pgrep", "-x", "-f", "sleep 30"]).exit_code != 0:   # lab-init's wait began
        assert time.monotonic() < deadline, node.logs().decode()
        time.sleep(0.1)
    began = time.monotonic()
    with RouteInstaller(client, LAB) as routes:
        routes.install(node, "n60")
    while node.exec_run(["test", "-e", "/run/lab/init-done"]).exit_code != 0:
        assert time.monotonic() - began < 10, node.logs().decode()
        time.sleep(0.1)
    assert "lab-init: routes installed by the runtime: 1 lines" in node.logs().decode()


def test_a_node_waiting_for_its_answer_stops_waiting_when_the_run_is_undone(client, image):
    """The helper frozen (no answer can come); the run's cancel ends the node's wait within
    a fraction of a second, told as such, instead of the two minutes an answer may take."""
    node = _node(client, image, 70, "198.19.70.0/24 via 198.18.248.170\n")
    cancel = threading.Event()
    with RouteInstaller(client, LAB) as routes:
        routes.prepare()
        [helper] = _helpers(client)
        helper.pause()
        try:
            outcome: list = []
            asker = threading.Thread(target=lambda: outcome.append(_install(routes, node, cancel)))
            asker.start()
            time.sleep(0.5)
            assert asker.is_alive()
            began = time.monotonic()
            cancel.set()
            asker.join(timeout=10)
            assert not asker.is_alive() and time.monotonic() - began < 2
        finally:
            helper.unpause()
    assert outcome == ["node 'n40' failed: its routes could not be installed: the run is being undone"], outcome


def _install_while_paused(client, routes: RouteInstaller, node) -> tuple[str | None, float, object]:
    """A node's install with the lab's helper made and then paused: (its outcome, the seconds
    it took, the helper), the helper running again after it, if it is still there."""
    routes.prepare()
    [helper] = _helpers(client)
    helper.pause()
    try:
        began = time.monotonic()
        outcome = _install(routes, node)
        return outcome, time.monotonic() - began, helper
    finally:
        try:
            helper.unpause()
        except docker.errors.NotFound:
            pass   # removed (a helper that took half a request is)


def test_a_helper_that_takes_no_answer_for_too_long_is_told_and_the_node_fails(client, image, monkeypatch):
    """The helper frozen, the answer limit at one second: the node fails within seconds
    (a timer), told that no answer came; unfrozen, the helper serves the next node."""
    monkeypatch.setattr(netns, "ANSWER_SECONDS", 1)
    node = _node(client, image, 80, "198.19.80.0/24 via 198.18.248.180\n")
    with RouteInstaller(client, LAB) as routes:
        outcome, waited, _ = _install_while_paused(client, routes, node)
        assert outcome == "node 'n40' failed: its routes could not be installed: " \
                          "the route helper gave no answer within 1 s", outcome
        assert 1 <= waited < 5, waited
        assert _install(routes, _node(client, image, 81, "198.19.81.0/24 via 198.18.248.181\n")) is None


def test_a_request_the_helper_does_not_take_is_given_up_and_said(client, image, monkeypatch):
    """The helper frozen and a request bigger than every buffer between us and its stdin:
    the write waits for room at most the send limit (one second here, by a timer), the node
    is told why. A helper left with half a line is done with: the next node gets a new one."""
    monkeypatch.setattr(helper_channel, "SEND_SECONDS", 1)
    node = _node(client, image, 82, "198.19.82.0/24 via 198.18.248.182\n")
    with RouteInstaller(client, LAB) as routes:
        with monkeypatch.context() as huge:
            huge.setattr(netns, "request_line", lambda pid, cid, given: f"{pid} {cid} " + "A" * 8_000_000)
            outcome, waited, helper = _install_while_paused(client, routes, node)
        assert outcome == "node 'n40' failed: its routes could not be installed: " \
                          "the helper took no request for 1 s", outcome
        assert 1 <= waited < 5, waited
        assert helper.id not in [h.id for h in _helpers(client)]
        assert _install(routes, _node(client, image, 83, "198.19.83.0/24 via 198.18.248.183\n")) is None
    assert "198.19.83.0/24 via 198.18.248.183" in _table(client.containers.get("it-route-helper-n83"))


def test_a_node_never_started_has_its_lab_files_read_from_its_creation(client, image):
    """read_lab_file of a created, never started node: /lab is not in it yet, the files
    come from the environment it was created with; once started, from its /lab."""
    files = {"notes": "made by the test\n"}
    node = client.containers.create(image, ["sleep", "infinity"], network="it-route-helper-net",
                                    name="it-route-helper-n84", labels=TEST_LABEL,
                                    environment={FILES_ENV: environment_value(files)})
    assert node.status == "created"
    assert read_lab_file(client.containers.get(node.id), "notes") == files["notes"]
    assert read_lab_file(node, "missing") == ""
    node.start()
    deadline = time.monotonic() + 30
    while node.exec_run(["test", "-e", "/lab/.unpacked"]).exit_code != 0:
        assert time.monotonic() < deadline, node.logs().decode()
        time.sleep(0.1)
    node.exec_run(["sh", "-c", "echo 'changed in the node' >> /lab/notes"])
    assert read_lab_file(node, "notes") == files["notes"] + "changed in the node\n"
