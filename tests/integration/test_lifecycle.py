"""`lab up`, `lab down`, changes and failures, on a real engine."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from types import MappingProxyType

import pytest

from lab.plan.model import LABEL_LAB
from lab.backends.docker import apply
from lab.backends.docker.engine import NodeFailed
from lab.errors import RuntimeFailure

from tests.engine_requests import counted

from .conftest import topology_text


def leftovers(client, lab: str) -> dict:
    label = {"label": f"{LABEL_LAB}={lab}"}
    return {"containers": client.containers.list(all=True, filters=label),
            "networks": client.networks.list(filters=label)}



def with_file(plan, node: str, name: str, text: str):
    """The plan with one of node's /lab files replaced (to break its start-up on purpose)."""
    container = plan.container(node)
    changed = dataclasses.replace(container, files=MappingProxyType({**container.files, name: text}))
    return dataclasses.replace(plan, containers=tuple(changed if c.name == node else c for c in plan.containers))

def test_minimal_lab_client_fetches_a_page_across_the_router(make_lab, engine):
    lab = make_lab(topology_text("minimal", "it-mini"))
    asked: list[str] = []
    def record(response, *_, **__):   # each request, and what it made (a create's body names its role)
        body = response.request.body or b""
        asked.append(f"{response.request.method} {response.request.url} "
                     f"{body.decode(errors='replace') if isinstance(body, bytes) else body}")

    engine.api.hooks.setdefault("response", []).append(record)
    try:
        report = lab.up()
    finally:
        engine.api.hooks["response"].remove(record)
    assert sorted(report.created) == ["client", "router", "web"]
    # The route helper is asked for before any node starts, so no node waits for it to start.
    helper = next(i for i, line in enumerate(asked) if line.startswith("POST") and "/containers/create" in line
                  and '"route-helper"' in line)
    node_ids = {c.id for c in leftovers(engine, lab.name)["containers"]}
    starts = [i for i, line in enumerate(asked) if line.startswith("POST") and line.split()[1].endswith("/start")
              and line.split()[1].rsplit("/", 2)[-2] in node_ids]
    assert starts and helper < min(starts), asked
    web = str(lab.lab.instance("web").address_on("server"))
    code, page = lab.exec("client", "curl", "-sS", "-m", "5", f"http://{web}:8000/")
    assert code == 0 and "web" in page
    code, hops = lab.exec("client", "traceroute", "-n", "-w", "1", "-q", "1", web)
    router = str(lab.lab.instance("router").address_on("lan"))
    assert code == 0
    assert hops.splitlines()[1].split()[1] == router, hops
    # The app loads while lab-init works, but opens its socket only once lab-init is done.
    log = engine.containers.get(f"{lab.name}-web").logs().decode()
    assert log.index("lab-init: done") < log.index("Uvicorn running on"), log


def test_an_app_whose_start_up_fails_stops_and_says_why(make_lab, engine):
    lab = make_lab(topology_text("minimal", "it-initfail"))
    # A CA that is no certificate: lab-init (run beside the app's loading) refuses it.
    lab.plan = with_file(lab.plan, "web", "ca.crt", "not a certificate\n")
    # The engine's own account, streamed while it happens (it replays only its last few
    # hundred events, minutes too few on a busy engine).
    stream = engine.events(decode=True, filters={"event": "die", "label": f"{LABEL_LAB}={lab.name}"})
    deaths: list[tuple[str, str]] = []
    listener = threading.Thread(target=lambda: deaths.extend(
        (e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"]["exitCode"]) for e in stream), daemon=True)
    listener.start()
    try:
        with pytest.raises(NodeFailed) as caught:
            apply.up(engine, lab.plan)
    finally:
        time.sleep(1)   # the last events on their way
        stream.close()
    assert caught.value.node == "web"
    assert "exited with status 1" in caught.value.reason
    assert "/lab/ca.crt is not a certificate" in caught.value.log_tail
    assert "lab-init failed" in caught.value.log_tail and "Uvicorn running" not in caught.value.log_tail
    assert (f"{lab.name}-web", "1") in deaths, deaths   # the engine saw it die with that status
    assert leftovers(engine, lab.name) == {"containers": [], "networks": []}


def test_up_again_changes_nothing_and_an_edit_recreates_only_that_node(make_lab, engine):
    text = topology_text("minimal", "it-edit")
    lab = make_lab(text)
    lab.up()
    ids = {c.name: c.id for c in leftovers(engine, lab.name)["containers"]}
    with counted(engine) as requests:
        again = lab.up()
    assert not again.changed and sorted(again.unchanged) == ["client", "router", "web"]
    # A no-op up costs a few list calls whatever the lab's size: none about one node, no exec;
    # only an image whose `latest` tag another checkout moved is tagged again.
    assert requests.per_object() == [], requests.counts()
    lists = [shape for shape in requests.shapes if shape != "POST /images/:id/tag"]
    assert sorted(lists) == ["GET /containers/json", "GET /images/json", "GET /networks", "GET /volumes"]
    assert requests.counts()["POST /images/:id/tag"] <= len({c.service for c in lab.plan.containers}) + 1   # + base
    edited = text.replace("    kind: app\n", "    kind: app\n    port: 8080\n")
    report = lab.up(edited)
    assert report.recreated == ["web"] and sorted(report.unchanged) == ["client", "router"]
    now = {c.name: c.id for c in leftovers(engine, lab.name)["containers"]}
    # names carry the test's subnet shift (it-edit-3-web under LAB_TEST_SUBNET_SHIFT=3)
    assert now[f"{lab.name}-web"] != ids[f"{lab.name}-web"]
    assert now[f"{lab.name}-client"] == ids[f"{lab.name}-client"]
    assert now[f"{lab.name}-router"] == ids[f"{lab.name}-router"]
    web = str(lab.lab.instance("web").address_on("server"))
    code, _ = lab.exec("client", "curl", "-sS", "-m", "5", f"http://{web}:8080/healthz")
    assert code == 0


def test_a_node_that_fails_leaves_nothing_behind_and_is_named(make_lab, engine):
    lab = make_lab(topology_text("minimal", "it-fail"))
    # Break one node's rendered routes: its start-up refuses to run on wrong routes.
    lab.plan = with_file(lab.plan, "web", "routes", "192.0.2.0/24 via 198.51.100.1\n")
    with pytest.raises(NodeFailed) as caught:
        apply.up(engine, lab.plan)
    assert caught.value.node == "web"
    assert "route" in str(caught.value)
    assert leftovers(engine, lab.name) == {"containers": [], "networks": []}


def test_down_twice_leaves_nothing_labelled(make_lab, engine, images):
    lab = make_lab(topology_text("minimal", "it-down"))
    lab.up()
    # what a killed `lab capture`, `lab impair` or `lab trace --pcap` would leave: running helpers
    for role in ("capture", "impair", "trace-capture"):
        engine.containers.run(images["router"], entrypoint=["sleep", "600"], detach=True,
                              labels={LABEL_LAB: lab.name, "lab.role": role}, network_mode="none")
    first = lab.down()
    assert sorted(first.containers) == ["client", "router", "web"]
    second = lab.down()
    assert second.containers == [] and second.networks == []
    assert leftovers(engine, lab.name) == {"containers": [], "networks": []}


def test_stop_and_start_a_node(make_lab, engine):
    from lab.backends.docker import inspect

    lab = make_lab(topology_text("minimal", "it-stop"))
    lab.up()
    inspect.stop_node(engine, lab.name, "web")
    states = {row.node: row.state for row in inspect.lab_status(engine, lab.name)}
    assert states["web"] == "exited"
    web = str(lab.lab.instance("web").address_on("server"))
    code, _ = lab.exec("client", "curl", "-sS", "-m", "2", f"http://{web}:8000/healthz")
    assert code != 0
    inspect.start_node(engine, lab.name, "web")
    code, output = lab.exec("client", "curl", "-sS", "-m", "5", f"http://{web}:8000/healthz")
    assert code == 0, f"after a restart the node must have its lab routes again: {output}"
    # started by hand and running again: `lab up` has nothing to do, and (the ledger back once
    # the node was ready) asks no node anything
    with counted(engine) as requests:
        again = lab.up()
    assert not again.changed and sorted(again.unchanged) == ["client", "router", "web"]
    assert requests.per_object() == [], requests.counts()


def test_two_labs_run_side_by_side(make_lab):
    first = make_lab(topology_text("minimal", "it-left"))
    second_text = topology_text("minimal", "it-right")
    for prefix in ("100.64.", "198.19."):   # move every third octet by one: no overlap
        second_text = re.sub(rf"{re.escape(prefix)}(\d+)\.", lambda m, p=prefix: f"{p}{int(m.group(1)) + 1}.",
                             second_text)
    second = make_lab(second_text)
    first.up()
    second.up()
    for lab in (first, second):
        web = str(lab.lab.instance("web").address_on("server"))
        assert lab.exec("client", "curl", "-sS", "-m", "5", f"http://{web}:8000/healthz")[0] == 0


def test_live_files_are_applied_in_place_without_a_restart(make_lab, engine):
    lab = make_lab(topology_text("minimal", "it-live"))

    def with_live(plan, content):
        router = dataclasses.replace(plan.container("router"), live_files=MappingProxyType({"etc/note": content}),
                                     reload=("sh", "-c", "cp /lab/etc/note /run/lab/applied"))
        return dataclasses.replace(plan, containers=tuple(router if c.name == "router" else c
                                                          for c in plan.containers))

    apply.up(engine, with_live(lab.plan, "one\n"))
    before = engine.containers.get(f"{lab.name}-router").id
    report = apply.up(engine, with_live(lab.plan, "two\n"))
    assert report.reloaded == ["router"] and not report.recreated and not report.created
    assert engine.containers.get(f"{lab.name}-router").id == before
    assert lab.exec("router", "cat", "/run/lab/applied") == (0, "two\n")
    assert not apply.up(engine, with_live(lab.plan, "two\n")).changed


@pytest.mark.parametrize("width", [80, 120])
def test_status_is_readable_at_any_width(make_lab, width):
    import os
    import subprocess
    import sys

    lab = make_lab(topology_text("minimal", f"it-width{width}"))
    lab.up()
    result = subprocess.run([sys.executable, "-m", "lab", "status", "--lab", lab.name], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": str(width)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    text = result.stdout
    for instance in lab.lab.instances:   # every name and every "network address" pair whole
        assert instance.name in text
        for network, address in instance.addresses.items():
            assert f"{network} {address}" in text
    assert text.count("ready") >= 3 and "running" in text


def test_a_network_the_engine_refuses_mid_run_is_named_and_everything_made_is_undone(make_lab, engine,
                                                                                   monkeypatch):
    """Networks are made beside the nodes: when one fails, a node on another may be starting
    already (here the app server, whose one network is made). The error names the network and
    says what to do; nothing of the lab is left."""
    import docker.errors
    import docker.models.networks
    lab = make_lab(topology_text("minimal", "it-netfail"))
    collection = docker.models.networks.NetworkCollection
    real = collection.create
    web = f"{lab.name}-web"
    seen: list[str] = []   # the app server's container, once made (before the engine refuses)

    def refusing(self, name, **options):   # the engine's answer to a subnet another network holds
        if name == f"{lab.name}-lan":
            deadline = time.monotonic() + 20   # the app server, on the other network, is made first
            while not seen and time.monotonic() < deadline:
                seen.extend(c.name for c in leftovers(engine, lab.name)["containers"] if c.name == web)
                time.sleep(0.05)
            raise docker.errors.APIError("400 Client Error", explanation="Pool overlaps with other one on "
                                         "this address space")
        return real(self, name, **options)

    monkeypatch.setattr(collection, "create", refusing)
    with pytest.raises(RuntimeFailure) as raised:
        lab.up()
    said = str(raised.value)
    assert "network 'lan'" in said and "overlapping subnet" in said, said
    assert seen   # the failure came mid-run
    assert leftovers(engine, lab.name) == {"containers": [], "networks": []}
