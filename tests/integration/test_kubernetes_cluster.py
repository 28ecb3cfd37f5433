"""Opt-in: the default lab on a real cluster, when this machine has a kubeconfig.

With a kubeconfig (KUBECONFIG or ~/.kube/config) it brings the default lab up with
`lab up --backend kubernetes`, traces a request through it and runs its checks,
then takes it down. The cluster must be ready for it (docs/scale-out.md: Multus,
the bridge and static CNI plugins, the lab's images on its nodes, the forwarding
sysctl allowed). Without a kubeconfig it is skipped, and says so.
LAB_TEST_LINKS=vxlan runs it with `--links vxlan` (a cluster of several nodes: its
pods then land on any node, and the trace and checks cross the VXLAN links).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT

pytest.importorskip("kubernetes", reason="the kubernetes client is not installed (pip install 'lab[kubernetes]')")

from lab.backends.kubernetes.api import kubeconfig_path  # noqa: E402  (after the skip: it needs the client)

pytestmark = pytest.mark.skipif(kubeconfig_path() is None,
                                reason="no kubeconfig (KUBECONFIG or ~/.kube/config): no cluster to run the "
                                       "default lab on")

NAME = "p20-cluster"
LINKS = os.environ.get("LAB_TEST_LINKS", "bridge")


def lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_BACKEND": "kubernetes", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def default_lab(tmp_path_factory):
    topology = tmp_path_factory.mktemp("cluster") / "default.yaml"
    topology.write_text((ROOT / "topology" / "default.yaml").read_text().replace("name: shop", f"name: {NAME}", 1))
    made = lab("up", str(topology), "--backend", "kubernetes", "--links", LINKS)
    try:
        assert made.returncode == 0, made.stdout + made.stderr
        yield topology
    finally:
        lab("down", "--lab", NAME, "--volumes")


def test_every_node_is_ready_on_the_cluster(default_lab):
    status = json.loads(lab("status", "--lab", NAME, "--json").stdout)
    assert status["nodes"] and all(node["health"] == "ready" for node in status["nodes"]), status


def test_a_request_is_traced_through_the_lab(default_lab):
    traced = lab("trace", "--file", str(default_lab), "--json", "https://www.shop.test/")
    assert traced.returncode == 0, traced.stdout + traced.stderr
    trace = json.loads(traced.stdout)
    assert trace["schema"] == "lab.trace/2" and trace["outcome"]["ok"], trace["outcome"]
    assert trace["steps"], "a trace of the cluster's lab names the nodes that took part"


def test_the_labs_checks_pass_on_the_cluster(default_lab):
    checked = lab("check", str(default_lab))
    assert checked.returncode == 0, checked.stdout + checked.stderr
