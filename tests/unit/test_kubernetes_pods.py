"""How the kubernetes backend reads a pod: ready, hopeless or still coming, and its addresses.

The pods here are shaped as the API returns them (status.conditions, container
states, the Multus network-status annotation)."""

from __future__ import annotations

import json

from lab.backends.kubernetes.backend import NETWORK_STATUS_ANNOTATION, _addresses
from lab.backends.kubernetes.pods import current, is_ready, problem, state
from lab.export.kubernetes import NETWORKS_ANNOTATION

REQUESTS = json.dumps([{"name": "lan", "namespace": "lab-x", "ips": ["10.150.1.1/24"], "interface": "net1"},
                       {"name": "dmz", "namespace": "lab-x", "ips": ["10.150.2.1/24"], "interface": "net2"}])


def pod(phase="Running", ready=True, waiting=None, init_waiting=None, deleting=False, attached=None) -> dict:
    annotations = {NETWORKS_ANNOTATION: REQUESTS}
    if attached is not None:
        annotations[NETWORK_STATUS_ANNOTATION] = json.dumps(attached)
    meta = {"name": "r-1", "annotations": annotations, **({"deletionTimestamp": "now"} if deleting else {})}
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"name": "node", "state": {"waiting": {"reason": waiting}}}]
    if init_waiting:
        status["initContainerStatuses"] = [{"name": "lab-routes", "state": {"waiting": {"reason": init_waiting,
                                                                                        "message": "back-off"}}}]
    return {"metadata": meta, "status": status}


def test_ready_is_the_ready_condition_and_nothing_else():
    assert is_ready(pod())
    assert not is_ready(pod(ready=False))
    assert not is_ready(None)


def test_a_pod_that_will_not_come_by_itself_is_named_with_its_reason():
    assert problem(pod(phase="Pending", ready=False, waiting="ContainerCreating")) is None   # still coming
    assert problem(pod(phase="Pending", ready=False, waiting="ImagePullBackOff")) == \
        "container node is ImagePullBackOff"
    assert problem(pod(phase="Pending", ready=False, init_waiting="CrashLoopBackOff")) == \
        "container lab-routes is CrashLoopBackOff: back-off"
    assert "its pod failed" in problem(pod(phase="Failed", ready=False))


def test_a_pod_on_its_way_out_is_not_the_nodes_pod():
    old, new = pod(deleting=True), pod(phase="Pending", ready=False)
    assert current([old, new]) is new
    assert current([old]) is None and state(None) == "stopped"
    assert state(new) == "pending"


def test_addresses_are_what_multus_attached_else_what_the_pod_asked_for():
    deployment = {"spec": {"template": {"metadata": {"annotations": {NETWORKS_ANNOTATION: REQUESTS}}}}}
    assert _addresses(deployment, None) == {"lan": "10.150.1.1", "dmz": "10.150.2.1"}
    attached = [{"name": "cluster-default", "interface": "eth0", "ips": ["10.244.0.7"]},
                {"name": "lab-x/lan", "interface": "net1", "ips": ["10.150.1.1"]},
                {"name": "lab-x/dmz", "interface": "net2", "ips": ["10.150.2.99"]}]
    assert _addresses(deployment, pod(attached=attached)) == {"lan": "10.150.1.1", "dmz": "10.150.2.99"}
