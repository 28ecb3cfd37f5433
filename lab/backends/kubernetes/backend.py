"""KubernetesBackend: the Backend protocol (lab/backends/protocol.py) on a cluster with Multus.

A lab is a namespace labelled with its name; a node is a Deployment of one pod
(lab/export/kubernetes.py renders them). Commands address nodes by the lab's
names; nothing outside this package sees a pod, a namespace or the client.
What a cluster cannot do here yet raises NotSupported, in one sentence.
"""

from __future__ import annotations

import json
import sys
import time
from typing import BinaryIO, ContextManager, Iterator

from kubernetes.client import ApiClient

from lab.backends.kubernetes import apply, objects
from lab.backends.kubernetes.api import MERGE_PATCH, call, read_text, stream_text
from lab.backends.kubernetes.podexec import run_in_pod
from lab.backends.kubernetes.pods import current, is_ready, state, wait_gone, wait_ready
from lab.backends.protocol import (CaptureRequest, CaptureResult, DownReport, Events, ExecResult, LabSummary,
                                   NodeStatus, Progress, Recording, UpReport)
from lab.errors import NotSupported, RuntimeFailure
from lab.export.kubernetes import NETWORKS_ANNOTATION
from lab.impair import Applied, Impairment
from lab.plan.model import LABEL_COPY, LABEL_FILE, LABEL_KIND, LABEL_LAB, LABEL_OWNER, Plan

NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"   # written by Multus: what it attached
START_TIMEOUT_SECONDS = 300


def _quiet(event: str, subject: str, detail: str) -> None:
    """No one is listening for events."""


class KubernetesBackend:
    """Runs labs as namespaces on one cluster, found again by their labels."""

    name = "kubernetes"

    def __init__(self, api: ApiClient, namespace: str | None = None, poll_seconds: float = 1.0,
                 links: str = "bridge"):
        self.api = api
        self.namespace = namespace        # for up: the namespace a new lab goes into
        self.poll = poll_seconds
        self.links = links                # for up: bridge (one cluster node) or vxlan (across nodes)

    # lifecycle -------------------------------------------------------------

    def up(self, plan: Plan, events: Events | None = None, progress: Progress | None = None) -> UpReport:
        return apply.up(self.api, plan, self.namespace, events or _quiet, self.poll, link_mode=self.links)

    def down(self, lab: str, volumes: bool = False) -> DownReport:
        return apply.down(self.api, lab, volumes, self.poll)

    def build(self, kinds: list[str], progress: Progress | None = None, force: bool = False) -> dict[str, str]:
        raise NotSupported("building images is not supported on the kubernetes backend: build them with "
                           "`lab build` on Docker and load them onto the cluster's nodes (docs/scale-out.md)")

    # looking ---------------------------------------------------------------

    def list_labs(self) -> list[LabSummary]:
        labs = []
        for namespace in objects.lab_namespaces(self.api):
            lab = namespace["metadata"]["labels"][LABEL_LAB]
            found = objects.deployments(self.api, namespace["metadata"]["name"], lab)
            if not found:
                continue        # data kept after `lab down`: no lab, as on Docker
            first = next(iter(found.values()))
            running = sum(1 for d in found.values() if (d.get("status") or {}).get("readyReplicas"))
            labs.append(LabSummary(lab, len(found), running, objects.meta_value(first, LABEL_FILE),
                                   int(objects.meta_value(first, LABEL_COPY, "0") or 0),
                                   objects.meta_value(first, LABEL_OWNER)))
        return sorted(labs, key=lambda entry: entry.lab)

    def lab_exists(self, lab: str) -> bool:
        return objects.namespace_of(self.api, lab) is not None

    def _namespace(self, lab: str) -> str | None:
        return objects.namespace_of(self.api, lab)

    def status(self, lab: str) -> list[NodeStatus]:
        namespace = self._namespace(lab)
        if namespace is None:
            return []
        found, pods = objects.deployments(self.api, namespace, lab), objects.pods(self.api, namespace, lab)
        rows = []
        for node, deployment in sorted(found.items()):
            pod = current(pods.get(node, []))
            health = "-" if pod is None or state(pod) != "running" else ("ready" if is_ready(pod) else "not ready")
            rows.append(NodeStatus(node, _kind(deployment), _addresses(deployment, pod), state(pod), health,
                                   (pod or {}).get("metadata", {}).get("name", deployment["metadata"]["name"]),
                                   (pod or deployment)["metadata"].get("uid", "")[:12]))
        return rows

    def node_kinds(self, lab: str) -> dict[str, str]:
        namespace = self._namespace(lab)
        return {node: _kind(d) for node, d in objects.deployments(self.api, namespace, lab).items()} \
            if namespace else {}

    def address_book(self, lab: str) -> dict[str, str]:
        book = {}
        for row in self.status(lab):
            if row.state == "running":
                book.update({address: row.node for address in row.addresses.values()})
        return book

    def logs(self, lab: str, node: str, follow: bool = False, tail: int | str = "all") -> Iterator[bytes]:
        """The node's log; following it, new lines as the API streams them, until the node's
        container ends (the kubelet then closes the stream, as Docker's does)."""
        namespace, pod = self._pod(lab, node)
        query = {"container": "node", **({"tailLines": str(tail)} if tail != "all" else {})}
        path = f"{objects.collection('Pod', namespace)}/{pod['metadata']['name']}/log"
        what = f"{'following' if follow else 'reading'} the log of node '{node}'"
        if follow:
            yield from stream_text(self.api, path, what, {**query, "follow": "true"})
        else:
            yield read_text(self.api, path, what, query)

    def read_file(self, lab: str, node: str, path: str) -> str:
        result = self.exec(lab, node, ["cat", path])
        if result.code != 0:
            raise RuntimeFailure(f"node '{node}' has no file {path}")
        return result.stdout

    # acting ----------------------------------------------------------------

    def exec(self, lab: str, node: str, command: list[str]) -> ExecResult:
        namespace, pod = self._pod(lab, node)
        started = time.monotonic()
        code, stdout, stderr = run_in_pod(self.api, namespace, pod["metadata"]["name"], command,
                                          f"running a command in node '{node}'")
        return ExecResult(code, stdout, stderr, time.monotonic() - started)

    def attach(self, lab: str, node: str, command: list[str]) -> int:
        """Without a terminal: the command's output is copied once it ends (kubectl exec -it gives one)."""
        result = self.exec(lab, node, command)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.code

    def stop(self, lab: str, node: str) -> None:
        namespace = self._scale(lab, node, 0)
        wait_gone(self.api, namespace, lab, [node], START_TIMEOUT_SECONDS, self.poll)

    def start(self, lab: str, node: str) -> float:
        started = time.monotonic()
        namespace = self._scale(lab, node, 1)
        wait_ready(self.api, namespace, lab, [node], START_TIMEOUT_SECONDS, self.poll)
        return time.monotonic() - started

    def capture(self, request: CaptureRequest, sink: BinaryIO) -> CaptureResult:
        raise NotSupported("capturing packets from outside a node (lab capture) is not supported on the "
                           "kubernetes backend yet")

    def record(self, lab: str, filters: dict[str, str]) -> ContextManager[Recording]:
        raise NotSupported("recording a request's packets (lab trace --pcap) is not supported on the "
                           "kubernetes backend yet")

    def impair(self, lab: str, node: str, network: str, impairment: Impairment | None) -> Applied:
        raise NotSupported("impairing links (lab impair) is not supported on the kubernetes backend yet")

    def set_link(self, lab: str, node: str, network: str, up: bool) -> tuple[str, str]:
        raise NotSupported("taking a node's link down or up (lab link) is not supported on the kubernetes "
                           "backend yet")

    def netem_available(self, lab: str) -> bool:
        raise NotSupported("impairing links (lab impair) is not supported on the kubernetes backend yet")

    def run_isolated(self, kind: str, command: list[str], archive: bytes, into: str) -> str:
        raise NotSupported("throwaway nodes (BIND's zone pre-flight) are not supported on the kubernetes "
                           "backend yet")

    # helpers ---------------------------------------------------------------

    def _nodes(self, lab: str) -> tuple[str, dict[str, dict]]:
        namespace = self._namespace(lab)
        found = objects.deployments(self.api, namespace, lab) if namespace else {}
        return namespace or "", found

    def _unknown(self, lab: str, node: str, found: dict) -> RuntimeFailure:
        known = ", ".join(sorted(found)) or "none: is the lab up? (lab ls)"
        return RuntimeFailure(f"lab '{lab}' has no node '{node}' (nodes: {known})")

    def _pod(self, lab: str, node: str) -> tuple[str, dict]:
        namespace, found = self._nodes(lab)
        if node not in found:
            raise self._unknown(lab, node, found)
        pod = current(objects.pods(self.api, namespace, lab).get(node, []))
        if pod is None or state(pod) != "running":
            raise RuntimeFailure(f"node '{node}' is not running (lab start --lab {lab} {node})")
        return namespace, pod

    def _scale(self, lab: str, node: str, replicas: int) -> str:
        namespace, found = self._nodes(lab)
        if node not in found:
            raise self._unknown(lab, node, found)
        call(self.api, "PATCH", f"{objects.collection('Deployment', namespace)}/{node}/scale",
             f"scaling node '{node}'", body={"spec": {"replicas": replicas}}, content_type=MERGE_PATCH)
        return namespace


def _kind(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["labels"].get(LABEL_KIND, "?")


def _addresses(deployment: dict, pod: dict | None) -> dict[str, str]:
    """network -> address: what Multus reports it attached, else what the pod asked for."""
    if pod is not None:
        reported = (pod["metadata"].get("annotations") or {}).get(NETWORK_STATUS_ANNOTATION)
        if reported:
            names = {entry["interface"]: entry["name"] for entry in _requests(pod["metadata"])}
            return {names[s["interface"]]: s["ips"][0] for s in json.loads(reported)
                    if s.get("interface") in names and s.get("ips")}
    return {entry["name"]: entry["ips"][0].split("/")[0]
            for entry in _requests(deployment["spec"]["template"]["metadata"])}


def _requests(meta: dict) -> list[dict]:
    return json.loads((meta.get("annotations") or {}).get(NETWORKS_ANNOTATION, "[]"))
