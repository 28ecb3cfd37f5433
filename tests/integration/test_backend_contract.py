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
from tests.integration.kubernetes_fake import FakeCluster, Refusal, serving

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
    log_append: Callable[[str, str], None]      # a line written to a node's log, around the backend


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

    def append(node: str, line: str) -> None:     # the node's PID 1 holds its log's stdout
        containers()[node].exec_run(["sh", "-c", f"echo {line} > /proc/1/fd/1"])

    return Harness(DockerBackend(engine), name, plan, lambda: set(containers()),
                   lambda node: containers()[node].status == "running",
                   lambda: [x for group in labelled(engine, name).values() for x in group],
                   lambda node: containers()[node].logs(), append)


def _kubernetes_harness(fake: FakeCluster, tmp: Path) -> Harness:
    plan, _ = _plan(tmp, "p20-contract-k", 3, 4)
    name, namespace = plan.lab, f"lab-{plan.lab}"
    backend = open_backend("kubernetes")           # through the kubeconfig that names the fake
    fake.logs["web"] = "recorded: GET /healthz 200\nrecorded: GET / 200\n"

    def deployments():
        return {n for kind, ns, n in fake.labelled(name) if kind == "Deployment"}

    def running(node):
        return any(p["status"]["phase"] == "Running" for p in fake.pods_of(namespace, node))

    def append(node: str, line: str) -> None:
        with fake.lock:
            fake.logs[node] = fake.logs.get(node, "") + line + "\n"

    return Harness(backend, name, plan, deployments, running, lambda: fake.of_namespace(namespace),
                   lambda node: fake.logs.get(node, f"recorded log line of {node}\n").encode(), append)


pytestmark = pytest.mark.usefixtures("own_state")


@pytest.fixture(scope="module")
def fake_cluster(tmp_path_factory):
    pytest.importorskip("kubernetes", reason="the kubernetes client is not installed (pip install 'lab[kubernetes]')")
    with serving(tmp_path_factory.mktemp("kube") / "config", {SHOUT: SHOUT_RESULT}) as fake:
        yield fake


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


def test_exec_from_several_threads_at_once_keeps_each_answer_its_own(running):
    """lab trace runs commands in several nodes at once."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda node: running.backend.exec(running.lab, node, list(SHOUT)), NODES * 2))
    assert [(r.code, r.stdout, r.stderr) for r in results] == [SHOUT_RESULT] * 6


def test_logs_are_the_nodes_own_log(running):
    whole = running.log_seen("web")
    assert b"".join(running.backend.logs(running.lab, "web")) == whole
    assert b"".join(running.backend.logs(running.lab, "web", tail=1)) == b"".join(whole.splitlines(True)[-1:])


def test_following_a_log_shows_new_lines_until_the_node_stops(running):
    """lab logs -f: lines written after it started arrive while it runs, and it ends by itself
    when the node stops (its container ends), as `docker logs -f` and `kubectl logs -f` do."""
    import threading
    import time

    chunks: list[bytes] = []
    ended = threading.Event()

    def follow() -> None:
        for chunk in running.backend.logs(running.lab, "web", follow=True, tail=0):
            chunks.append(chunk)
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while b"followed-line" not in b"".join(chunks):   # written until seen: the stream opens when it opens
            assert time.monotonic() < deadline, "a line written to the log never arrived"
            running.log_append("web", "followed-line")
            time.sleep(0.3)
        assert not ended.is_set()
        running.backend.stop(running.lab, "web")
        assert not running.running_seen("web")
        assert ended.wait(30), "the followed log did not end when its node stopped"
    finally:
        if not running.running_seen("web"):
            running.backend.start(running.lab, "web")


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


# --- the kubernetes backend's failure paths (on the recorded fake) --------------------------


@pytest.fixture
def fresh(fake_cluster, tmp_path):
    """A plan of its own, and afterwards nothing of it left in the fake."""
    plan, file = _plan(tmp_path, "p20-fail-k", 5, 6)
    yield plan, file
    for kind, namespace, name in fake_cluster.labelled(plan.lab):
        try:
            fake_cluster.delete(kind, namespace, name)
        except Refusal:
            pass    # gone with its namespace
    fake_cluster.pod_problem.clear()
    fake_cluster.refuse.clear()
    fake_cluster.refuse_in.clear()


def test_a_pod_that_cannot_start_undoes_everything_the_run_made(fake_cluster, fresh):
    plan, _ = fresh
    fake_cluster.pod_problem["web"] = "ErrImageNeverPull"
    events = []
    with pytest.raises(RuntimeFailure, match="node 'web' cannot start on the cluster: container node is "
                                             "ErrImageNeverPull"):
        open_backend("kubernetes").up(plan, lambda *event: events.append(event))
    assert fake_cluster.labelled(plan.lab) == []
    assert fake_cluster.of_namespace(f"lab-{plan.lab}") == []
    # what the user read was so: the fake's pod of web was in that state when it was undone
    assert ("DELETE", f"/apis/apps/v1/namespaces/lab-{plan.lab}/deployments/web") in fake_cluster.calls
    assert events[-1][0] == "rollback" and "deleted the" in events[-1][2]


def test_a_refused_create_is_reported_in_the_apis_words_and_undone(fake_cluster, fresh):
    plan, _ = fresh
    refusal = 'deployments.apps "router" is forbidden: User "tester" cannot create resource "deployments"'
    fake_cluster.refuse[("Deployment", "router")] = refusal
    with pytest.raises(RuntimeFailure) as caught:
        open_backend("kubernetes").up(plan)
    assert refusal in str(caught.value) and "creating Deployment router" in str(caught.value)
    assert fake_cluster.labelled(plan.lab) == []


def test_a_namespace_that_is_not_the_labs_is_left_alone(fake_cluster, fresh):
    plan, _ = fresh
    fake_cluster.create("Namespace", "v1", None, {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": "p20-taken"}})
    try:
        with pytest.raises(UsageError, match="namespace p20-taken already exists .* --namespace NS"):
            open_backend("kubernetes", namespace="p20-taken").up(plan)
        assert fake_cluster.of_namespace("p20-taken") == [("Namespace", "p20-taken")]
    finally:
        fake_cluster.delete("Namespace", None, "p20-taken")


def test_a_running_lab_is_not_changed_in_place(fake_cluster, fresh):
    plan, _ = fresh
    backend = open_backend("kubernetes")
    backend.up(plan)
    before = fake_cluster.labelled(plan.lab)
    with pytest.raises(RuntimeFailure, match="not supported on the kubernetes backend yet: `lab down` it first"):
        backend.up(plan)
    assert fake_cluster.labelled(plan.lab) == before


def test_what_the_cluster_cannot_do_yet_is_said_in_one_sentence(fake_cluster, fresh):
    backend = open_backend("kubernetes")
    calls = {
        "capture": lambda: backend.capture(CaptureRequest("x", "web"), sys.stdout.buffer),
        "impair": lambda: backend.impair("x", "web", "lan", None),
        "run_isolated": lambda: backend.run_isolated("dns-root", ["true"], b"", "/tmp"),
        "build": lambda: backend.build(["client"]),
        "build_browser": lambda: backend.build_browser(),
        "run_browser": lambda: backend.run_browser("x", "laptop", ["https://www.shop.test/"], {}),
    }
    for what, call in calls.items():
        with pytest.raises(NotSupported) as caught:
            call()
        message = str(caught.value)
        assert "not supported on the kubernetes backend" in message and "\n" not in message, what


def test_the_fake_refuses_what_the_real_api_refuses(fake_cluster, fresh):
    """The fake's checks can fail: a misspelt field in a Deployment gets the API's 422, and is recorded."""
    from lab.backends.kubernetes.api import ApiFailure, call
    from lab.export.kubernetes import kubernetes_documents

    plan, _ = fresh
    documents = kubernetes_documents(plan, plan.file)
    backend = open_backend("kubernetes")
    call(backend.api, "POST", "/api/v1/namespaces", "creating", body=documents[0])
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["hostName"] = "typo"
    with pytest.raises(ApiFailure, match="the cluster refused it") as caught:
        call(backend.api, "POST", f"/apis/apps/v1/namespaces/{documents[0]['metadata']['name']}/deployments",
             "creating", body=deployment)
    assert caught.value.status == 422
    assert fake_cluster.invalid and "hostName" in fake_cluster.invalid.pop()


# --- the commands, with LAB_BACKEND (the one rule in open_backend) -------------------------


def _lab(*args: str, backend: str | None = "kubernetes") -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("LAB_BACKEND", None)
    if backend:
        env["LAB_BACKEND"] = backend
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_commands_run_on_the_backend_lab_backend_names(fake_cluster, fresh):
    plan, file = fresh
    made = _lab("up", str(file), "--backend", "kubernetes", backend=None)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"lab '{plan.lab}' is up: 3 created" in made.stdout
    assert sorted(d for kind, _, d in fake_cluster.labelled(plan.lab) if kind == "Deployment") == NODES
    listed = json.loads(_lab("ls", "--json").stdout)
    assert [e["lab"] for e in listed] == [plan.lab]
    status = json.loads(_lab("status", "--lab", plan.lab, "--json").stdout)
    assert {n["node"]: n["health"] for n in status["nodes"]} == dict.fromkeys(NODES, "ready")
    shout = _lab("exec", "--lab", plan.lab, "web", "--", *SHOUT)
    assert (shout.returncode, shout.stdout, shout.stderr) == SHOUT_RESULT
    gone = _lab("down", "--lab", plan.lab)
    assert gone.returncode == 0 and fake_cluster.labelled(plan.lab) == []


def test_an_unknown_backend_or_a_missing_kubeconfig_is_one_line(tmp_path):
    wrong = _lab("ls", backend="kubernets")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "unknown backend 'kubernets' (LAB_BACKEND): choose docker or kubernetes"
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path), "LAB_BACKEND": "kubernetes"}
    missing = subprocess.run([sys.executable, "-m", "lab", "ls"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "no kubeconfig found" in missing.stderr


def test_the_default_lab_goes_up_and_down_on_the_fake_with_every_object_valid(fake_cluster, tmp_path):
    """The whole default lab (zones, a database claim, Secrets), through the command a user types.
    Its BIND pre-flight needs a throwaway node, which the cluster cannot run yet: a note says so.
    `lab down` keeps the database's claim (and so its namespace); the next `up` finds it again."""
    from tests.integration.conftest import ROOT

    topology = tmp_path / "default.yaml"
    topology.write_text((ROOT / "topology" / "default.yaml").read_text().replace("name: shop", "name: p20-shop", 1))
    namespace = "lab-p20-shop"
    try:
        made = _lab("up", str(topology), "--backend", "kubernetes", backend=None)
        assert made.returncode == 0, made.stdout + made.stderr
        assert "BIND's zone pre-flight is skipped" in made.stderr
        kinds = {kind for kind, _ in fake_cluster.of_namespace(namespace)}
        assert {"Deployment", "ConfigMap", "Secret", "PersistentVolumeClaim", "NetworkAttachmentDefinition"} <= kinds
        claims = {name: o["metadata"]["uid"] for (kind, _, name), o in fake_cluster.objects.items()
                  if kind == "PersistentVolumeClaim"}
        kept = _lab("down", "--lab", "p20-shop")
        assert kept.returncode == 0 and "data volumes kept" in kept.stdout
        assert {kind for kind, _ in fake_cluster.of_namespace(namespace)} == {"Namespace", "PersistentVolumeClaim"}
        assert json.loads(_lab("ls", "--json").stdout) == []
        again = _lab("up", str(topology), "--backend", "kubernetes", backend=None)
        assert again.returncode == 0, again.stdout + again.stderr
        assert {name: o["metadata"]["uid"] for (kind, _, name), o in fake_cluster.objects.items()
                if kind == "PersistentVolumeClaim"} == claims          # the same claim: the data kept
        assert fake_cluster.invalid == []
    finally:
        gone = _lab("down", "--lab", "p20-shop", "--volumes")
    assert gone.returncode == 0 and fake_cluster.of_namespace(namespace) == []


def test_a_classroom_on_the_cluster_is_a_namespace_per_copy(fake_cluster, fresh, tmp_path):
    plan, file = fresh
    roster = tmp_path / "roster.txt"
    roster.write_text("ada@example.org\nbob\n")
    made = _lab("up", str(file), "--backend", "kubernetes", "--roster", str(roster), backend=None)
    try:
        assert made.returncode == 0, made.stdout + made.stderr
        for copy, owner in ((1, "ada@example.org"), (2, "bob")):
            namespace = f"lab-{plan.lab}-{copy}"
            held = fake_cluster.of_namespace(namespace)
            assert sorted(name for kind, name in held if kind == "Deployment") == NODES
            web = fake_cluster.objects[("Deployment", namespace, "web")]["metadata"]
            assert owner in (web["labels"].get("lab.owner"), web.get("annotations", {}).get("lab.owner"))
        listed = {e["lab"]: e["owner"] for e in json.loads(_lab("ls", "--json").stdout)}
        assert listed == {f"{plan.lab}-1": "ada@example.org", f"{plan.lab}-2": "bob"}
        refused = _lab("up", str(file), "--backend", "kubernetes", "--copies", "2", "--namespace", "x", backend=None)
        assert refused.returncode == 2 and "leave it out with --copies" in refused.stderr
    finally:
        gone = _lab("down", str(file), "--copies")
    assert gone.returncode == 0
    assert [key for key in fake_cluster.objects if f"lab-{plan.lab}-" in f"{key[1]} {key[2]}"] == []


def test_a_classroom_copy_the_cluster_refuses_is_undone_and_the_others_stay(fake_cluster, fresh):
    """One copy's namespace refuses one of its Deployments halfway through its run (recorded: as an
    admission policy would); that copy is undone, named with the API's words, the others stay up."""
    plan, file = fresh
    broken = f"lab-{plan.lab}-2"
    refusal = f'admission webhook "policy.example" denied the request: no more deployments in {broken}'
    fake_cluster.refuse_in[("Deployment", broken, "router")] = refusal
    made = _lab("up", str(file), "--backend", "kubernetes", "--copies", "3", backend=None)
    try:
        assert made.returncode == 1, made.stdout + made.stderr
        said = " ".join(made.stderr.split())
        assert f"✗ {plan.lab}-2: creating Deployment router: the cluster refused it ({refusal})" in said
        assert f"2 of 3 copies up; failed: {plan.lab}-2" in made.stdout
        assert fake_cluster.of_namespace(broken) == []           # its namespace, NADs, client: undone
        assert ("POST", f"/apis/apps/v1/namespaces/{broken}/deployments") in fake_cluster.calls
        for copy in (1, 3):
            held = fake_cluster.of_namespace(f"lab-{plan.lab}-{copy}")
            assert sorted(name for kind, name in held if kind == "Deployment") == NODES
        assert [e["lab"] for e in json.loads(_lab("ls", "--json").stdout)] == [f"{plan.lab}-1", f"{plan.lab}-3"]
    finally:
        gone = _lab("down", str(file), "--copies")
    assert gone.returncode == 0
    assert [key for key in fake_cluster.objects if f"lab-{plan.lab}-" in f"{key[1]} {key[2]}"] == []
