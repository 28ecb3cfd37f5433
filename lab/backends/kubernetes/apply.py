"""`lab up` and `lab down` on a cluster: the export's objects created stage by stage, or removed.

Up makes a new lab only (changing a running lab in place is not supported here
yet). It creates the namespace, the networks and the data claims, then each
start stage's ConfigMaps, Secrets and Deployments, and waits until that stage's
pods are ready before the next, as Docker's up waits on dependencies. If
anything fails, or a signal arrives, every object this run created is deleted,
newest first, so the cluster is left as it was.
"""

from __future__ import annotations

import time

from kubernetes.client import ApiClient

from lab.backends.kubernetes import links, objects
from lab.backends.kubernetes.api import MERGE_PATCH, NotFound, call
from lab.backends.kubernetes.pods import wait_gone, wait_ready
from lab.backends.protocol import DownReport, Events, UpReport
from lab.errors import NotSupported, RuntimeFailure, UsageError
from lab.interrupts import shielded
from lab.export.kubernetes import kubernetes_documents, namespace_for
from lab.export.kubernetes_links import links_table
from lab.plan.model import LABEL_LAB, LABEL_NODE, Plan

READY_TIMEOUT_SECONDS = 600     # image pulls and a cold cluster node, not only the probes
GONE_TIMEOUT_SECONDS = 180


class _Created:
    """What this run made, to delete newest first if it fails."""

    def __init__(self, api: ApiClient):
        self.api = api
        self.made: list[tuple[str, str | None, str]] = []

    def create(self, document: dict) -> None:
        objects.create(self.api, document)
        meta = document["metadata"]
        self.made.append((document["kind"], meta.get("namespace"), meta["name"]))

    def undo(self, events: Events) -> None:
        for kind, namespace, name in reversed(self.made):
            try:
                objects.delete(self.api, kind, namespace, name)
            except RuntimeFailure as error:   # keep undoing the rest; say what is left
                events("rollback", name, f"could not delete {kind}: {error}")
        if self.made:
            events("rollback", "cluster", f"deleted the {len(self.made)} objects this run made")


def _choose_namespace(api: ApiClient, plan: Plan, wanted: str | None) -> tuple[str, bool]:
    """The lab's namespace and whether it exists already (a lab taken down with its data kept)."""
    existing = objects.namespace_of(api, plan.lab)
    if existing and objects.deployments(api, existing, plan.lab):
        raise RuntimeFailure(f"lab '{plan.lab}' already runs on the cluster (namespace {existing}); changing a "
                             "running lab in place is not supported on the kubernetes backend yet: `lab down` "
                             "it first")
    if existing and wanted and wanted != existing:
        raise UsageError(f"lab '{plan.lab}' keeps its data in namespace {existing}: use --namespace {existing}, "
                         f"or delete it with `lab down --lab {plan.lab} --volumes`")
    name = existing or namespace_for(plan, wanted)
    if not existing and objects.namespace_exists(api, name):
        raise UsageError(f"namespace {name} already exists and is not lab '{plan.lab}''s: choose another "
                         "with --namespace NS")
    return name, bool(existing)


def _missing_claims(api: ApiClient, claims: list[dict], namespace: str) -> list[dict]:
    missing = []
    for claim in claims:
        try:
            call(api, "GET", objects.object_path("PersistentVolumeClaim", namespace,
                                                          claim["metadata"]["name"]), "reading a data claim")
        except NotFound:
            missing.append(claim)
    return missing


def up(api: ApiClient, plan: Plan, namespace: str | None, events: Events, poll: float,
       ready_timeout: float = READY_TIMEOUT_SECONDS, link_mode: str = "bridge") -> UpReport:
    started = time.monotonic()
    own = sorted(c.name for c in plan.containers if c.image or c.build or not c.service)
    if own:
        raise NotSupported(f"nodes with their own image or build ({', '.join(own)}) are not supported on the "
                           "kubernetes backend yet")
    report = UpReport()
    namespace, kept = _choose_namespace(api, plan, namespace)
    documents = kubernetes_documents(plan, plan.file, namespace, links=link_mode)
    joins = [d for d in documents if d["kind"] in ("Service", "DaemonSet")]
    if joins:
        taken = links.vxlan_ids_in_use(api, plan.lab, lambda note: events("links", "vxlan", note))
        links.refuse_shared_ids(plan.lab, links_table(plan), taken)
    created = _Created(api)
    try:
        if not kept:
            created.create(documents[0])
        elif joins:    # kept from a run without links: its label must now allow their host-network pods
            call(api, "PATCH", objects.object_path("Namespace", None, namespace), "labelling the namespace "
                 "for the links", body={"metadata": {"labels": documents[0]["metadata"]["labels"]}},
                 content_type=MERGE_PATCH)
        for document in joins:     # the bridges joined on every node before any pod uses them
            created.create(document)
        if joins:
            nodes = links.wait_joined(api, namespace, plan.lab, "up", ready_timeout, poll)
            events("links", "vxlan", f"{len(plan.networks)} networks joined across {nodes} cluster nodes")
        for document in documents:
            if document["kind"] == "NetworkAttachmentDefinition":
                created.create(document)
                report.networks_created.append(document["metadata"]["name"])
                events("network", document["metadata"]["name"], "NetworkAttachmentDefinition")
        claims = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
        for claim in _missing_claims(api, claims, namespace) if kept else claims:
            created.create(claim)
        for stage in plan.stages():
            _create_stage(api, created, documents, [c.name for c in stage], namespace, plan.lab, events, poll,
                          ready_timeout)
            report.created += [c.name for c in stage]
    except BaseException:
        # A second Ctrl-C must not leave half the lab behind: the undo runs to its end.
        with shielded(lambda: events("rollback", "cluster", "undoing this run's objects, please wait")):
            created.undo(events)
        raise
    report.seconds = time.monotonic() - started
    return report


def _create_stage(api: ApiClient, created: _Created, documents: list[dict], nodes: list[str], namespace: str,
                  lab: str, events: Events, poll: float, timeout: float) -> None:
    for document in documents:
        if document["kind"] in ("ConfigMap", "Secret", "Deployment") \
                and document["metadata"]["labels"].get(LABEL_NODE) in nodes:
            created.create(document)
    wait_ready(api, namespace, lab, nodes, timeout, poll,
               on_ready=lambda node, seconds: events("ready", node, f"{seconds:.1f} s"))


def down(api: ApiClient, lab: str, volumes: bool, poll: float) -> DownReport:
    """Delete the lab's objects (its data claims only with volumes), then its namespace when empty."""
    namespace = objects.namespace_of(api, lab)
    report = DownReport()
    if namespace is None:
        return report
    selector = f"{LABEL_LAB}={lab}"
    for node in sorted(objects.deployments(api, namespace, lab)):
        if objects.delete(api, "Deployment", namespace, node):
            report.containers.append(node)
    for kind in ("ConfigMap", "Secret", "NetworkAttachmentDefinition"):
        for found in objects.listed(api, kind, namespace, selector):
            objects.delete(api, kind, namespace, found["metadata"]["name"])
            if kind == "NetworkAttachmentDefinition":
                report.networks.append(found["metadata"]["name"])
    claims = objects.listed(api, "PersistentVolumeClaim", namespace, selector)
    if volumes:
        for claim in claims:
            objects.delete(api, "PersistentVolumeClaim", namespace, claim["metadata"]["name"])
            report.volumes.append(claim["metadata"]["name"])
    wait_gone(api, namespace, lab, None, GONE_TIMEOUT_SECONDS, poll)
    # Only once no pod uses them: the links' devices on every cluster node, then their objects.
    report.link_hosts = links.remove(api, namespace, lab, GONE_TIMEOUT_SECONDS, poll)
    if volumes or not claims:
        objects.delete(api, "Namespace", None, namespace)
        _wait_namespace_gone(api, namespace, poll)
    return report


def _wait_namespace_gone(api: ApiClient, namespace: str, poll: float) -> None:
    started = time.monotonic()
    while objects.namespace_exists(api, namespace):
        if time.monotonic() - started > GONE_TIMEOUT_SECONDS:
            raise RuntimeFailure(f"namespace {namespace} is still being deleted after {GONE_TIMEOUT_SECONDS} s "
                                 f"(kubectl get namespace {namespace})")
        time.sleep(poll)
