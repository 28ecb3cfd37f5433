"""`lab up --backend kubernetes --links vxlan` and its `lab down`, on the recorded fake of the API.

NO CLUSTER RUNS HERE. The backend talks through the official client to
tests/integration/kubernetes_fake.py on 127.0.0.1: every object it creates, and
the DaemonSet it patches into its cleanup mode, is validated as the real API
would (OpenAPI schemas, strict); what the cluster does with them is recorded
(a DaemonSet's pods, one per fake node, ready at once or stuck as told). What the
DaemonSet's script does on a node is tested for real in test_links_script.py.
Each claim is checked against the fake's own store and its log of requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.backends import open_backend
from lab.errors import RuntimeFailure, UsageError
from lab.export.kubernetes_links import LINK_MTU, links_table
from lab.plan import make_plan
from lab.state import ensure_lab_state
from lab.topology import load_text
from tests.integration.kubernetes_fake import FakeCluster, Refusal, serving

TOPOLOGY = """
name: {name}
networks:
  lan:    {{subnet: 10.220.{a}.0/24}}
  server: {{subnet: 10.220.{b}.0/24}}
nodes:
  client: {{kind: client, networks: [lan]}}
  router: {{kind: router, networks: [lan, server]}}
  web:    {{kind: app, networks: [server]}}
"""


pytestmark = pytest.mark.usefixtures("own_state")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    pytest.importorskip("kubernetes", reason="the kubernetes client is not installed (pip install 'lab[kubernetes]')")
    with serving(tmp_path_factory.mktemp("kube") / "config") as cluster:
        yield cluster


def make(tmp: Path, name: str, a: int = 1, b: int = 2):
    file = tmp / f"{name}.yaml"
    file.write_text(TOPOLOGY.format(name=name, a=a, b=b))
    lab = load_text(file.read_text(), str(file))
    return make_plan(lab, ensure_lab_state(lab)), file


@pytest.fixture
def clean(fake):
    """Whatever a test leaves in the fake is removed, and its switches reset."""
    yield
    for kind, namespace, name in list(fake.labelled_all()):
        try:
            fake.delete(kind, namespace, name)
        except Refusal:
            pass
    fake.links_problem = None
    fake.forbidden_lists.clear()
    fake.links_modes.clear()
    fake.calls.clear()


def created(fake: FakeCluster, namespace: str) -> list[str]:
    """The kinds POSTed into the namespace, in order."""
    return [path.rsplit("/", 1)[1] for method, path in fake.calls
            if method == "POST" and f"/namespaces/{namespace}/" in path]


def test_links_join_every_node_before_any_pod_and_are_removed_at_down(fake, clean, tmp_path):
    plan, _ = make(tmp_path, "kube-links")
    namespace = "lab-kube-links"
    events = []
    backend = open_backend("kubernetes", links="vxlan")
    backend.up(plan, lambda *event: events.append(event))
    order = created(fake, namespace)
    assert order[:2] == ["services", "daemonsets"]
    assert set(order[2:]) == {"network-attachment-definitions", "configmaps", "deployments"}
    daemonset = fake.objects[("DaemonSet", namespace, "lab-links")]
    assert json.loads(daemonset["metadata"]["annotations"]["lab.links"]) == links_table(plan)
    assert ("links", "vxlan", f"2 networks joined across {len(fake.nodes)} cluster nodes") in events
    for network in ("lan", "server"):
        config = json.loads(fake.objects[("NetworkAttachmentDefinition", namespace, network)]["spec"]["config"])
        assert config["bridge"] == links_table(plan)[network]["bridge"] and config["mtu"] == LINK_MTU
    namespace_labels = fake.objects[("Namespace", None, namespace)]["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert {row.health for row in backend.status(plan.lab)} == {"ready"}       # the links' pods are no nodes

    fake.calls.clear()
    assert backend.down(plan.lab, volumes=True).link_hosts == len(fake.nodes)
    assert fake.links_modes == ["up", "down"]          # every node's pod ran the cleanup mode before ...
    daemonset_path = f"/apis/apps/v1/namespaces/{namespace}/daemonsets/lab-links"
    patched = fake.calls.index(("PATCH", daemonset_path))
    assert patched < fake.calls.index(("DELETE", daemonset_path))          # ... the DaemonSet went
    last_deployment = max(i for i, (m, p) in enumerate(fake.calls) if m == "DELETE" and "/deployments/" in p)
    assert last_deployment < patched                   # and only once no lab pod used the bridges
    assert fake.of_namespace(namespace) == []


def test_a_node_whose_links_fail_stops_the_lab_and_undoes_it(fake, clean, tmp_path):
    plan, _ = make(tmp_path, "kube-badlinks", 3, 4)
    fake.links_problem = "CrashLoopBackOff"
    with pytest.raises(RuntimeFailure) as caught:
        open_backend("kubernetes", links="vxlan").up(plan)
    message = str(caught.value)
    assert "the VXLAN links of lab 'kube-badlinks' cannot be made on cluster node kube-node-" in message
    assert "container links is CrashLoopBackOff" in message
    assert fake.of_namespace("lab-kube-badlinks") == []
    assert not any("/deployments" in path for method, path in fake.calls if method == "POST")


def test_a_vxlan_id_another_lab_holds_is_refused_before_anything_is_made(fake, clean, tmp_path):
    plan, _ = make(tmp_path, "kube-first", 5, 6)
    open_backend("kubernetes", links="vxlan").up(plan)
    other, _ = make(tmp_path, "kube-second", 7, 8)
    # Names that would give the same id are rare: make the first lab hold the second's id for lan.
    daemonset = fake.objects[("DaemonSet", "lab-kube-first", "lab-links")]
    held = json.loads(daemonset["metadata"]["annotations"]["lab.links"])
    held["lan"]["vni"] = links_table(other)["lan"]["vni"]
    daemonset["metadata"]["annotations"]["lab.links"] = json.dumps(held)
    fake.calls.clear()
    with pytest.raises(RuntimeFailure, match=rf"network lan \(VXLAN id {held['lan']['vni']}\) and lab "
                                             r"'kube-first''s network lan; .* rename the lab"):
        open_backend("kubernetes", links="vxlan").up(other)
    assert not [call for call in fake.calls if call[0] == "POST"]


def test_without_the_right_to_list_every_namespace_a_note_says_so_and_up_goes_on(fake, clean, tmp_path):
    plan, _ = make(tmp_path, "kube-narrow", 9, 10)
    fake.forbidden_lists.add("/apis/apps/v1/daemonsets")
    events = []
    open_backend("kubernetes", links="vxlan").up(plan, lambda *event: events.append(event))
    notes = [detail for event, _, detail in events if event == "links"]
    assert "the other labs' VXLAN ids cannot be read" in notes[0] and "joined across" in notes[-1]
    assert ("DaemonSet", "lab-kube-narrow", "lab-links") in fake.objects


def test_a_namespace_kept_from_a_run_without_links_is_labelled_for_them(fake, clean, tmp_path):
    """A lab brought down with its data kept, then up again with --links vxlan."""
    plan, _ = make(tmp_path, "kube-kept", 15, 16)
    namespace = "lab-kube-kept"
    fake.create("Namespace", "v1", None, {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": namespace, "labels": {"lab.name": plan.lab}}})
    fake.create("PersistentVolumeClaim", "v1", namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": namespace, "labels": {"lab.name": plan.lab}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    open_backend("kubernetes", links="vxlan").up(plan)
    labels = fake.objects[("Namespace", None, namespace)]["metadata"]["labels"]
    assert labels == {"lab.name": plan.lab, "pod-security.kubernetes.io/enforce": "privileged"}
    assert ("DaemonSet", namespace, "lab-links") in fake.objects


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("LAB_BACKEND", None)
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_command_a_user_types(fake, clean, tmp_path):
    plan, file = make(tmp_path, "kube-cli", 11, 12)
    made = lab_cli("up", str(file), "--backend", "kubernetes", "--links", "vxlan")
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"links    vxlan          2 networks joined across {len(fake.nodes)} cluster nodes" in made.stdout
    assert ("DaemonSet", "lab-kube-cli", "lab-links") in fake.objects
    gone = lab_cli("down", "--lab", "kube-cli", "--backend", "kubernetes")
    assert gone.returncode == 0, gone.stderr
    assert f"VXLAN links removed from {len(fake.nodes)} cluster nodes" in gone.stdout
    assert fake.of_namespace("lab-kube-cli") == [] and fake.links_modes[-1] == "down"
    on_docker = lab_cli("up", str(file), "--links", "vxlan")
    assert on_docker.returncode == 2 and "Traceback" not in on_docker.stderr
    assert on_docker.stderr.strip() == ("--links vxlan joins a lab network across a cluster's nodes: it is for "
                                        "the kubernetes backend (on docker a lab runs on one engine)")


def test_the_cli_refuses_an_unknown_link_mode(tmp_path):
    plan, file = make(tmp_path, "kube-mode", 13, 14)
    wrong = lab_cli("up", str(file), "--backend", "kubernetes", "--links", "geneve")
    assert wrong.returncode == 2 and "'geneve' is not one of 'bridge', 'vxlan'" in wrong.stderr
    with pytest.raises(UsageError):
        open_backend("docker", links="vxlan")
