"""One writer per lab, signals during `lab up`, leftovers and other labs, on a real engine.

Each test checks what the program says against what the engine shows: container
ids, the live files inside a node, the lab's own checks, the list of objects
left with the lab's label.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker.errors
import pytest

from lab.checks import run_checks
from lab.plan.model import LABEL_LAB
from lab.backends.docker import apply
from lab.backends.docker.backend import DockerBackend
from lab.backends.docker.inspect import start_node, stop_node
from lab.backends.docker.ledger import drop_ledger
from lab.backends.docker.objects import create_container
from lab.topology import load_text

from .conftest import LabUnderTest, ids, lab_cli, labelled, shift_subnets, topology_text


def _up_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(topology_text("minimal", name))
    return path


@pytest.mark.parametrize("gap", [0.0, 0.5])
def test_two_ups_at_once_one_succeeds_one_is_refused(engine, images, tmp_path, gap):
    file = _up_file(tmp_path, f"it-twice{int(gap * 10)}")
    lab = load_text(file.read_text(), str(file))
    try:
        first = lab_cli("up", str(file))
        time.sleep(gap)
        second = lab_cli("up", str(file))
        outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
        codes = sorted(p.returncode for p in (first, second))
        assert codes == [0, 1], outputs
        refusal = next(o for o, p in zip(outputs, (first, second)) if p.returncode == 1)
        assert "is busy" in refusal and "`lab up` (pid" in refusal
        assert "Traceback" not in "".join(outputs)
        # and a down (or a stop) while an up runs is refused the same way, touching nothing
        apply.down(engine, lab.name)
        third = lab_cli("up", str(file))
        for line in third.stdout:   # the up is under way: a first node is ready
            if "ready    " in line:
                break
        third.send_signal(signal.SIGSTOP)   # frozen mid-up, holding the lock: no race with its end
        try:
            for command in (["down", "--lab", lab.name], ["stop", "web", "--lab", lab.name]):
                other = lab_cli(*command)
                said = other.communicate(timeout=120)[0]
                assert other.returncode == 1 and "is busy" in said and "`lab up` (pid" in said, said
        finally:
            third.send_signal(signal.SIGCONT)
        assert third.wait(timeout=300) == 0
    finally:
        apply.down(engine, lab.name, volumes=True)
    assert labelled(engine, lab.name) == {"containers": [], "networks": []}


def _signal_when(process: subprocess.Popen, marker: str, signals: list[int]) -> str:
    """Read the command's output until marker appears, then send the signals (0.3 s apart)."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            for number in signals:
                process.send_signal(number)
                time.sleep(0.3)
            break
    seen.append(process.communicate(timeout=300)[0])
    return "".join(seen)


@pytest.mark.parametrize("signals, marker", [
    ([signal.SIGINT], "+ network"),
    ([signal.SIGINT, signal.SIGINT], "ready    root-1"),
    ([signal.SIGTERM], "ready    resolver"),
    ([signal.SIGHUP], "ready    app-"),
], ids=["sigint-early", "double-sigint", "sigterm", "sighup"])
def test_a_signal_during_up_rolls_back_and_the_next_up_is_healthy(engine, images, tmp_path, signals, marker):
    name = f"it-sig{signals[-1]}{len(signals)}"
    file = tmp_path / "lab.yaml"
    file.write_text(topology_text("default", name))
    lab = load_text(file.read_text(), str(file))
    try:
        process = lab_cli("up", str(file))
        output = _signal_when(process, marker, signals)
        assert process.returncode == 128 + signals[0], output
        assert f"interrupted by {signal.Signals(signals[0]).name}" in output
        if len(signals) > 1:
            assert "rolling back, please wait" in output
        assert "Traceback" not in output
        assert labelled(engine, lab.name) == {"containers": [], "networks": []}, output
        again = lab_cli("up", str(file))
        assert again.wait(timeout=300) == 0, again.stdout.read()
        assert all(r.passed for r in run_checks(DockerBackend(engine), lab))
    finally:
        apply.down(engine, lab.name, volumes=True)
    assert labelled(engine, lab.name) == {"containers": [], "networks": []}


def _route_helpers(client, lab: str) -> list:
    return client.containers.list(all=True, ignore_removed=True,
                                  filters={"label": [f"{LABEL_LAB}={lab}", "lab.role=route-helper"]})


def test_an_up_interrupted_while_its_route_helper_runs_leaves_no_helper(engine, images, tmp_path):
    """The signal comes when the engine shows the run's route helper (observed, not timed)."""
    file = _up_file(tmp_path, "it-sighelper")
    name = load_text(file.read_text(), str(file)).name
    try:
        process = lab_cli("up", str(file))
        deadline = time.monotonic() + 120
        while not _route_helpers(engine, name) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _route_helpers(engine, name), "no route helper was ever seen: nothing to interrupt"
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=300)[0]
        assert process.returncode == 130, output
        assert "interrupted by SIGINT" in output
        assert _route_helpers(engine, name) == []
        assert labelled(engine, name) == {"containers": [], "networks": []}, output
    finally:
        apply.down(engine, name, volumes=True)


def test_after_sigkill_the_next_up_repairs_the_lab(engine, images, tmp_path):
    file = tmp_path / "lab.yaml"
    file.write_text(topology_text("default", "it-kill"))
    lab = load_text(file.read_text(), str(file))
    try:
        process = lab_cli("up", str(file))
        for line in process.stdout:
            if "ready    resolver" in line:
                process.kill()   # no handler runs: whatever was half made stays
                break
        process.wait(timeout=60)
        assert labelled(engine, lab.name)["containers"], "the kill came too late to test anything"
        again = lab_cli("up", str(file))
        output = again.communicate(timeout=300)[0]
        assert again.returncode == 0, output
        failed = [r.as_dict() for r in run_checks(DockerBackend(engine), lab) if not r.passed]
        assert not failed, f"{failed}\n{output}"   # each check's whole record: what it observed
    finally:
        apply.down(engine, lab.name, volumes=True)
    left = labelled(engine, lab.name)
    assert left == {"containers": [], "networks": []}


def test_a_node_half_made_by_a_killed_run_is_made_again_not_started(engine, images, monkeypatch):
    """A run killed between the engine's create and the copy of the node's files (its secrets
    among them) leaves a container with the right config label but no password: starting it
    gave an app that could never reach its database, yet passed its probe."""
    lab = _app_and_database(engine, "it-half", "198.19.121.0/24")
    try:
        lab.up()
        engine.containers.get(f"{lab.name}-app").remove(force=True)
        drop_ledger(engine, lab.name)   # as the killed run would have, before changing anything
        app = lab.plan.container("app")
        image = images["app"]
        with monkeypatch.context() as patched:   # the kill: right after the create
            patched.setattr(engine.api, "put_archive", _killed)
            with pytest.raises(KeyboardInterrupt):
                create_container(engine, app, image, app.config_hash(image))
        half = engine.containers.get(f"{lab.name}-app")
        assert half.status == "created" and not _has_file(half, "/lab/db/password")
        report = lab.up()
        assert report.recreated == ["app"] and not report.started, report
        made = engine.containers.get(f"{lab.name}-app")
        assert made.id != half.id and _has_file(made, "/run/lab/app/db-password")
        code, answer = lab.exec("app", "curl", "-sS", "-m", "5", "http://127.0.0.1:8000/readyz")
        assert code == 0 and '"ready"' in answer, answer   # it reached its database, with the password
        assert "no schema yet" not in made.logs().decode(errors="replace")   # made at its start
    finally:
        lab.down(volumes=True)


def test_an_app_started_without_its_database_says_so_and_makes_its_schema_when_it_returns(engine, images):
    """The app serves (503s) when its database is away at its start, says why in its log, and
    makes its schema at the first request after the database returns."""
    lab = _app_and_database(engine, "it-noschema", "198.19.123.0/24")
    try:
        lab.up()
        stop_node(engine, lab.name, "app")
        stop_node(engine, lab.name, "db")
        began = time.time()
        start_node(engine, lab.name, "app")
        app = engine.containers.get(f"{lab.name}-app")
        said = app.logs(since=int(began) - 1).decode(errors="replace")
        # a stopped node's address is gone: the connection times out, or the kernel gives up on it
        assert re.search(r"lab-app: no schema yet, the database did not answer: "
                         r"(ConnectionTimeout|OperationalError): ", said), said
        start_node(engine, lab.name, "db")
        code, answer = lab.exec("app", "curl", "-sS", "-m", "10", "http://127.0.0.1:8000/api/products")
        assert code == 0 and "Lab coat" in answer, answer   # the catalogue, made at this request
    finally:
        lab.down(volumes=True)


def _app_and_database(engine, name: str, subnet: str) -> LabUnderTest:
    """A lab of one app and its database on one network (not up yet)."""
    text = (f"name: {name}\nnetworks:\n  data: {{subnet: {subnet}}}\n"
            "nodes:\n  db:\n    kind: database\n    networks: [data]\n"
            "  app:\n    kind: app\n    networks: [data]\n    database: db\n")
    return LabUnderTest(engine, shift_subnets(text))


def _killed(*_, **__):
    raise KeyboardInterrupt


def _has_file(container, path: str) -> bool:
    try:
        container.get_archive(path)
        return True
    except docker.errors.NotFound:
        return False


def test_postgres_stops_cleanly_on_down(engine, images):
    text = ("name: it-pg\nnetworks:\n  data: {subnet: 198.19.120.0/24}\n"
            "nodes:\n  db:\n    kind: database\n    networks: [data]\n")
    lab = LabUnderTest(engine, shift_subnets(text))
    try:
        lab.up()
        lab.down(volumes=False)
        lab.up()
        log = engine.containers.get(f"{lab.name}-db").logs().decode(errors="replace")
        assert "database system was shut down at" in log, log
        assert "automatic recovery" not in log and "not properly shut down" not in log, log
    finally:
        lab.down(volumes=True)


def test_leftover_helpers_make_no_lab_and_up_removes_them(engine, images, tmp_path):
    file = _up_file(tmp_path, "it-phantom")
    name = load_text(file.read_text(), str(file)).name   # with the test run's suffix, if any
    helper = engine.containers.create("lab/base:latest", command=["true"],
                                      labels={LABEL_LAB: name, "lab.role": "route-helper"})
    # a recording helper of a killed `lab trace --pcap` once its own time limit ended it
    stopped = engine.containers.create("lab/base:latest", command=["true"],
                                       labels={LABEL_LAB: name, "lab.role": "trace-capture"})
    try:
        listing = subprocess.run([sys.executable, "-m", "lab", "ls", "--json"], capture_output=True, text=True)
        assert f'"lab": "{name}"' not in listing.stdout
        up = subprocess.run([sys.executable, "-m", "lab", "up", str(file)], capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr
        assert helper.id not in ids(engine, name).values() and stopped.id not in ids(engine, name).values()
    finally:
        apply.down(engine, name, volumes=True)
    assert labelled(engine, name) == {"containers": [], "networks": []}


def test_another_lab_coming_and_going_never_breaks_this_labs_commands(engine, images, tmp_path):
    steady = _up_file(tmp_path, "it-steady")
    busy_text = re.sub(r"\b(100\.64|198\.19)\.(\d+)\.", lambda m: f"{m.group(1)}.{int(m.group(2)) + 1}.",
                       topology_text("minimal", "it-churn"))   # its own subnets
    busy = LabUnderTest(engine, busy_text)
    steady_lab = load_text(steady.read_text(), str(steady))
    stop = threading.Event()
    churn_errors: list[BaseException] = []

    def churn() -> None:
        while not stop.is_set():
            try:
                busy.up()
                busy.down()
            except BaseException as error:   # noqa: BLE001 - reported by the test
                churn_errors.append(error)
                return

    assert subprocess.run([sys.executable, "-m", "lab", "up", str(steady)], capture_output=True).returncode == 0
    worker = threading.Thread(target=churn)
    worker.start()
    failures = []
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for args in (["ls"], ["status", "--lab", steady_lab.name], ["status", "--lab", steady_lab.name, "--json"]):
                result = subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True)
                if result.returncode != 0:
                    failures.append((args, result.stdout + result.stderr))
    finally:
        stop.set()
        worker.join(timeout=120)
        busy.down()
        apply.down(engine, steady_lab.name, volumes=True)
    assert not failures, failures[:3]
    assert not churn_errors, churn_errors


@pytest.mark.parametrize("args", [["status", "--lab", ""], ["down", "--lab", ""], ["down", "--lab", "it-no-such-lab"],
                                  ["stop", "web", "--lab", "it-no-such-lab"], ["logs", "web", "--lab", "it-no-such-lab"]])
def test_an_empty_or_unknown_lab_is_a_usage_error(engine, args):
    result = subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "lab" in result.stderr and ("needs a lab's name" in result.stderr or "no lab named" in result.stderr)
