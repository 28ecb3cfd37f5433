"""One suite of Backend operations, run against both backends, so they behave the same by construction.

- docker: the real engine, real containers (a three-node lab on 10.150.0.0/16).
- kubernetes: NO CLUSTER RUNS HERE. The backend talks through the official client
  to a recorded fake of the Kubernetes API (tests/integration/kubernetes_fake.py)
  on 127.0.0.1: the requests are real and each created object is validated as the
  real API would (OpenAPI schemas, strict, and the NAD CRD schema); the cluster's
  answers (pods Ready at once, canned logs, exec output per command) are recorded.

Every claim is checked against an independent observation: the Docker SDK's own
view of the containers, or the fake's store of objects, never the backend's report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from lab.backends import open_backend
from lab.backends.protocol import Backend, CaptureRequest
from lab.errors import NotSupported, RuntimeFailure, UsageError
from lab.plan import make_plan
from lab.state import ensure_lab_state
from lab.topology import load_text
from tests.integration.conftest import labelled
from tests.integration.kubernetes_fake import FakeCluster

TOPOLOGY = """
# Three nodes on two networks: the contract tests' lab (10.150.0.0/16 is theirs alone).
name: {name}
networks:
  lan:    {{subnet: 10.150.{a}.0/24}}
  server: {{subnet: 10.150.{b}.0/24}}
nodes:
  client: {{kind: client, networks: [lan]}}
  router: {{kind: router, networks: [lan, server]}}
  web:    {{kind: app, networks: [server]}}
"""
NODES = ["client", "router", "web"]
# A command whose result is known without running it: on Docker it really runs; for the
# fake cluster this is its recording (what a node prints for it).
SHOUT = ("sh", "-c", "echo out; echo err >&2; exit 3")
SHOUT_RESULT = (3, "out\n", "err\n")


@dataclass
class Harness:
    """A backend with a lab up, and the independent ways to see what its engine holds."""

    backend: Backend
    lab: str
    plan: object
    nodes_seen: Callable[[], set[str]]          # the lab's nodes, as the engine holds them
    running_seen: Callable[[str], bool]         # a node runs, as the engine says
    leftovers: Callable[[], list]               # anything of the lab left in the engine
    log_seen: Callable[[str], bytes]            # a node's log, read around the backend


def _plan(tmp: Path, name: str, a: int, b: int):
    file = tmp / f"{name}.yaml"
    file.write_text(TOPOLOGY.format(name=name, a=a, b=b))
    lab = load_text(file.read_text(), str(file))
    return make_plan(lab, ensure_lab_state(lab)), file


def _docker_harness(engine, tmp: Path) -> Harness:
    from lab.backends.docker.backend import DockerBackend

    plan, _ = _plan(tmp, "p20-contract-d", 1, 2)
    name = plan.lab

    def containers():
        return {c.labels["lab.node"]: c for c in engine.containers.list(
            all=True, filters={"label": [f"lab.name={name}", "lab.node"]}, ignore_removed=True)}

    return Harness(DockerBackend(engine), name, plan, lambda: set(containers()),
                   lambda node: containers()[node].status == "running",
                   lambda: [x for group in labelled(engine, name).values() for x in group],
                   lambda node: containers()[node].logs())


def _kubernetes_harness(fake: FakeCluster, tmp: Path) -> Harness:
    plan, _ = _plan(tmp, "p20-contract-k", 3, 4)
    name, namespace = plan.lab, f"lab-{plan.lab}"
    backend = open_backend("kubernetes")           # through the kubeconfig that names the fake
    fake.logs["web"] = "recorded: GET /healthz 200\nrecorded: GET / 200\n"

    def deployments():
        return {n for kind, ns, n in fake.labelled(name) if kind == "Deployment"}

    def running(node):
        return any(p["status"]["phase"] == "Running" for p in fake.pods_of(namespace, node))

    return Harness(backend, name, plan, deployments, running, lambda: fake.of_namespace(namespace),
                   lambda node: fake.logs.get(node, f"recorded log line of {node}\n").encode())


@pytest.fixture(scope="module")
def fake_cluster(tmp_path_factory):
    with FakeCluster() as fake, pytest.MonkeyPatch.context() as patch:
        fake.recordings[SHOUT] = SHOUT_RESULT
        patch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path_factory.mktemp("kube") / "config")))
        yield fake
        assert fake.invalid == [], "the backend sent objects the real API would refuse"


@pytest.fixture(scope="module", params=["docker", "kubernetes"])
def running(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "docker":
        harness = _docker_harness(request.getfixturevalue("engine"), tmp)
    else:
        harness = _kubernetes_harness(request.getfixturevalue("fake_cluster"), tmp)
    try:
        harness.report = harness.backend.up(harness.plan)
        yield harness
    finally:
        harness.backend.down(harness.lab, volumes=True)


# --- the contract: the same on both backends ------------------------------------------------


def test_up_makes_every_node_and_network(running):
    assert sorted(running.report.created) == NODES
    assert sorted(running.report.networks_created) == ["lan", "server"]
    assert running.nodes_seen() == set(NODES)
    assert all(running.running_seen(node) for node in NODES)


def test_the_lab_is_listed_with_its_nodes_and_file(running):
    entry = next(e for e in running.backend.list_labs() if e.lab == running.lab)
    assert (entry.containers, entry.running) == (3, 3)
    assert entry.file == running.plan.file
    assert running.backend.lab_exists(running.lab)
    assert running.backend.node_kinds(running.lab) == {"client": "client", "router": "router", "web": "app"}


def test_status_shows_each_node_ready_at_its_planned_addresses(running):
    rows = {row.node: row for row in running.backend.status(running.lab)}
    assert sorted(rows) == NODES
    for container in running.plan.containers:
        row = rows[container.name]
        assert (row.state, row.health) == ("running", "ready")
        planned = {net.removeprefix(f"{running.lab}-"): address for net, address in container.addresses.items()}
        assert row.addresses == planned
    book = running.backend.address_book(running.lab)
    assert book[rows["web"].addresses["server"]] == "web"


def test_exec_returns_the_exit_status_and_both_streams(running):
    result = running.backend.exec(running.lab, "web", list(SHOUT))
    assert (result.code, result.stdout, result.stderr) == SHOUT_RESULT


def test_read_file_returns_the_planned_file_and_refuses_a_missing_one(running):
    planned = running.plan.container("web").files["env"]
    assert running.backend.read_file(running.lab, "web", "/lab/env") == planned
    with pytest.raises(RuntimeFailure, match="node 'web' has no file /lab/no-such-file"):
        running.backend.read_file(running.lab, "web", "/lab/no-such-file")


def test_logs_are_the_nodes_own_log(running):
    assert b"".join(running.backend.logs(running.lab, "web")) == running.log_seen("web")


def test_an_unknown_node_or_lab_is_named_with_what_exists(running):
    with pytest.raises(RuntimeFailure, match=r"has no node 'nope' \(nodes: client, router, web\)"):
        running.backend.exec(running.lab, "nope", ["true"])
    with pytest.raises(RuntimeFailure, match="has no node 'web'"):
        running.backend.exec("p20-no-such-lab", "web", ["true"])
    assert running.backend.status("p20-no-such-lab") == []
    assert not running.backend.lab_exists("p20-no-such-lab")


def test_stop_then_start_a_node(running):
    running.backend.stop(running.lab, "web")
    assert not running.running_seen("web")
    row = next(r for r in running.backend.status(running.lab) if r.node == "web")
    assert row.state != "running" and row.health == "-"
    with pytest.raises(RuntimeFailure, match="node 'web'"):
        running.backend.exec(running.lab, "web", ["true"])
    seconds = running.backend.start(running.lab, "web")
    assert seconds >= 0 and running.running_seen("web")
    assert next(r for r in running.backend.status(running.lab) if r.node == "web").health == "ready"


def test_down_leaves_nothing_and_is_safe_to_repeat(running):
    report = running.backend.down(running.lab, volumes=True)
    assert sorted(report.containers) == NODES
    assert running.leftovers() == []
    assert running.lab not in [e.lab for e in running.backend.list_labs()]
    assert running.backend.down(running.lab, volumes=True).containers == []
