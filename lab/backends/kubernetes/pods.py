"""A pod's state in lab terms, and waiting until a lab's pods are ready or gone."""

from __future__ import annotations

import time
from typing import Callable

from kubernetes.client import ApiClient

from lab.backends.kubernetes.objects import pods
from lab.errors import RuntimeFailure

# Waiting reasons that never pass by themselves: the pod is failing, not slow.
HOPELESS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff",
            "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def current(node_pods: list[dict]) -> dict | None:
    """The node's pod that is not on its way out."""
    live = [p for p in node_pods if not p["metadata"].get("deletionTimestamp")]
    return live[0] if live else None


def is_ready(pod: dict | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def state(pod: dict | None) -> str:
    """running, pending, failed ... as a word; "stopped" for a node without a pod (scaled to 0)."""
    if pod is None:
        return "stopped"
    return (pod.get("status", {}).get("phase") or "unknown").lower()


def problem(pod: dict) -> str | None:
    """Why a pod will not become ready without help, or None while it may still."""
    status = pod.get("status", {})
    if status.get("phase") == "Failed":
        return f"its pod failed ({status.get('reason') or status.get('message') or 'no reason given'})"
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in HOPELESS:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return f"container {container.get('name')} is {waiting['reason']}{detail}"
    return None


def wait_ready(api: ApiClient, namespace: str, lab: str, nodes: list[str], timeout: float, poll: float,
               on_ready: Callable[[str, float], None] = lambda node, seconds: None) -> None:
    """Until every node has a ready pod; RuntimeFailure naming the node that fails or is late."""
    started = time.monotonic()
    waiting = set(nodes)
    while waiting:
        found = pods(api, namespace, lab)
        for node in sorted(waiting):
            pod = current(found.get(node, []))
            if is_ready(pod):
                waiting.discard(node)
                on_ready(node, time.monotonic() - started)
            elif pod is not None and (why := problem(pod)):
                raise RuntimeFailure(f"node '{node}' cannot start on the cluster: {why}")
        if waiting and time.monotonic() - started > timeout:
            late = ", ".join(sorted(waiting))
            raise RuntimeFailure(f"not ready after {timeout:.0f} s on the cluster: {late} "
                                 f"(kubectl -n {namespace} describe pods shows why)")
        if waiting:
            time.sleep(poll)


def wait_gone(api: ApiClient, namespace: str, lab: str, nodes: list[str] | None, timeout: float,
              poll: float) -> None:
    """Until the nodes (None: all the lab's) have no pods left."""
    started = time.monotonic()
    while True:
        found = pods(api, namespace, lab)
        left = sorted(n for n in found if found[n] and (nodes is None or n in nodes))
        if not left:
            return
        if time.monotonic() - started > timeout:
            raise RuntimeFailure(f"the pods of {', '.join(left)} are still ending after {timeout:.0f} s "
                                 f"(kubectl -n {namespace} get pods)")
        time.sleep(poll)
