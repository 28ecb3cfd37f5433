"""The links DaemonSet on a cluster (--links vxlan): joined on every node before the lab's pods
start, its VXLAN ids checked against the other labs', and its devices removed at `lab down`.

What the DaemonSet does on each node is lab/export/links_script.py; here the
backend only reads what the cluster reports about it: the DaemonSet's status
(how many nodes should run it, how many run the current template and are
ready) and its pods' waiting reasons. A pod is ready only after its script's
pass succeeded on its node, so "every pod ready" is the evidence that the
devices exist (up) or are gone (the cleanup mode, at down).
"""

from __future__ import annotations

import json
import time
from typing import Callable

from kubernetes.client import ApiClient

from lab.backends.kubernetes import objects
from lab.backends.kubernetes.api import MERGE_PATCH, ApiFailure, NotFound, call
from lab.backends.kubernetes.pods import problem
from lab.errors import RuntimeFailure
from lab.export.kubernetes_links import IDS_ANNOTATION, LABEL_LINKS, LINKS_NAME, MODE_ANNOTATION
from lab.plan.model import LABEL_LAB

ALL_DAEMONSETS = "/apis/apps/v1/daemonsets"


def vxlan_ids_in_use(api: ApiClient, lab: str, note: Callable[[str], None]) -> dict[int, str]:
    """VNI -> "lab L's network N" for every other lab's links on the cluster. A user who may not
    list DaemonSets across namespaces gets a note, and the nodes' own check (the script refuses
    a VXLAN device that is joined to another bridge) still stands."""
    try:
        found = call(api, "GET", ALL_DAEMONSETS, "listing the labs' links",
                     query={"labelSelector": LABEL_LINKS}).get("items", [])
    except ApiFailure as error:
        if error.status != 403:
            raise
        note("the other labs' VXLAN ids cannot be read (no right to list DaemonSets in every namespace); "
             "each cluster node still refuses an id another lab holds")
        return {}
    taken = {}
    for daemonset in found:
        other = daemonset["metadata"].get("labels", {}).get(LABEL_LAB)
        if other == lab:
            continue
        table = json.loads((daemonset["metadata"].get("annotations") or {}).get(IDS_ANNOTATION, "{}"))
        taken.update({entry["vni"]: f"lab '{other}''s network {network}" for network, entry in table.items()})
    return taken


def refuse_shared_ids(lab: str, table: dict[str, dict], taken: dict[int, str]) -> None:
    clashes = [f"network {network} (VXLAN id {entry['vni']}) and {taken[entry['vni']]}"
               for network, entry in sorted(table.items()) if entry["vni"] in taken]
    if clashes:
        raise RuntimeFailure(f"lab '{lab}' would share a VXLAN id with a lab already on the cluster: "
                             f"{'; '.join(clashes)}; the ids come from the names: rename the lab "
                             "(or its network) and try again")


def _daemonset(api: ApiClient, namespace: str) -> dict | None:
    try:
        return call(api, "GET", objects.object_path("DaemonSet", namespace, LINKS_NAME), "reading the links")
    except NotFound:
        return None


def _settled(daemonset: dict) -> tuple[bool, int]:
    """(every node runs the current template and is ready, how many nodes should run it)."""
    status = daemonset.get("status") or {}
    desired = status.get("desiredNumberScheduled", 0)
    current = status.get("observedGeneration", 0) >= daemonset["metadata"].get("generation", 1)
    done = current and desired > 0 and status.get("updatedNumberScheduled", 0) == desired \
        and status.get("numberReady", 0) == desired
    return done, desired


def wait_joined(api: ApiClient, namespace: str, lab: str, mode: str, timeout: float, poll: float) -> int:
    """Until the links' pod on every node has passed (mode up: devices made; down: removed); the
    number of cluster nodes. RuntimeFailure naming the pod that fails or the nodes that are late."""
    started = time.monotonic()
    while True:
        daemonset = _daemonset(api, namespace)
        if daemonset is None:
            raise RuntimeFailure(f"the links of lab '{lab}' (DaemonSet {LINKS_NAME}) are gone from {namespace}")
        done, desired = _settled(daemonset)
        if done:
            return desired
        for pod in objects.listed(api, "Pod", namespace, f"{LABEL_LAB}={lab},{LABEL_LINKS}"):
            pod_mode = (pod["metadata"].get("annotations") or {}).get(MODE_ANNOTATION)
            if pod_mode == mode and (why := problem(pod)):
                where = pod.get("spec", {}).get("nodeName") or pod["metadata"]["name"]
                done_word = "made" if mode == "up" else "removed"
                raise RuntimeFailure(f"the VXLAN links of lab '{lab}' cannot be {done_word} "
                                     f"on cluster node {where}: {why} (kubectl -n {namespace} logs "
                                     f"{pod['metadata']['name']} says why)")
        if time.monotonic() - started > timeout:
            ready = (daemonset.get("status") or {}).get("numberReady", 0)
            raise RuntimeFailure(f"the VXLAN links of lab '{lab}' are ready on {ready} of {desired} cluster "
                                 f"nodes after {timeout:.0f} s (kubectl -n {namespace} get pods -l {LABEL_LINKS})")
        time.sleep(poll)


def remove(api: ApiClient, namespace: str, lab: str, timeout: float, poll: float) -> int:
    """Switch the links to their cleanup mode, wait until every node reports its devices gone, then
    delete the DaemonSet and its Service; the number of nodes cleaned (0: the lab had no links)."""
    if _daemonset(api, namespace) is None:
        return 0
    call(api, "PATCH", objects.object_path("DaemonSet", namespace, LINKS_NAME), "switching the links to cleanup",
         body={"spec": {"template": {"metadata": {"annotations": {MODE_ANNOTATION: "down"}}}}},
         content_type=MERGE_PATCH)
    nodes = wait_joined(api, namespace, lab, "down", timeout, poll)
    objects.delete(api, "DaemonSet", namespace, LINKS_NAME)
    objects.delete(api, "Service", namespace, LINKS_NAME)
    started = time.monotonic()
    while objects.listed(api, "Pod", namespace, f"{LABEL_LAB}={lab},{LABEL_LINKS}"):
        if time.monotonic() - started > timeout:
            raise RuntimeFailure(f"the links' pods of lab '{lab}' are still ending after {timeout:.0f} s "
                                 f"(kubectl -n {namespace} get pods -l {LABEL_LINKS})")
        time.sleep(poll)
    return nodes
