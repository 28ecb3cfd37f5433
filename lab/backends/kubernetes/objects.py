"""Where each kind of object lives in the API, and finding a lab's objects again by their labels."""

from __future__ import annotations

from kubernetes.client import ApiClient

from lab.backends.kubernetes.api import NotFound, call
from lab.plan.model import LABEL_LAB, LABEL_NODE

# kind -> the collection path in a namespace ({ns}); Namespace itself is cluster-wide.
COLLECTIONS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "NetworkAttachmentDefinition": "/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions",
}
NAMESPACES = "/api/v1/namespaces"


def collection(kind: str, namespace: str) -> str:
    return COLLECTIONS[kind].format(ns=namespace)


def object_path(kind: str, namespace: str | None, name: str) -> str:
    return f"{NAMESPACES}/{name}" if kind == "Namespace" else f"{collection(kind, namespace)}/{name}"


def create(api: ApiClient, document: dict) -> None:
    kind, meta = document["kind"], document["metadata"]
    path = NAMESPACES if kind == "Namespace" else collection(kind, meta["namespace"])
    call(api, "POST", path, f"creating {kind} {meta['name']}", body=document)


def delete(api: ApiClient, kind: str, namespace: str | None, name: str) -> bool:
    """Delete one object; False when it was already gone."""
    try:
        call(api, "DELETE", object_path(kind, namespace, name), f"deleting {kind} {name}",
             query={"propagationPolicy": "Foreground"})
        return True
    except NotFound:
        return False


def listed(api: ApiClient, kind: str, namespace: str, selector: str) -> list[dict]:
    return call(api, "GET", collection(kind, namespace), f"listing {kind}s",
                query={"labelSelector": selector}).get("items", [])


def lab_namespaces(api: ApiClient, lab: str | None = None) -> list[dict]:
    """The namespaces labelled as a lab's (one lab's, or every lab's)."""
    selector = f"{LABEL_LAB}={lab}" if lab else LABEL_LAB
    return call(api, "GET", NAMESPACES, "listing the labs' namespaces",
                query={"labelSelector": selector}).get("items", [])


def namespace_of(api: ApiClient, lab: str) -> str | None:
    found = lab_namespaces(api, lab)
    return found[0]["metadata"]["name"] if found else None


def namespace_exists(api: ApiClient, name: str) -> bool:
    try:
        call(api, "GET", object_path("Namespace", None, name), f"reading namespace {name}")
        return True
    except NotFound:
        return False


def deployments(api: ApiClient, namespace: str, lab: str) -> dict[str, dict]:
    """node -> its Deployment."""
    return {d["metadata"]["labels"][LABEL_NODE]: d
            for d in listed(api, "Deployment", namespace, f"{LABEL_LAB}={lab},{LABEL_NODE}")}


def pods(api: ApiClient, namespace: str, lab: str) -> dict[str, list[dict]]:
    """node -> its pods (one, or none while stopped; two for a moment while one ends)."""
    found: dict[str, list[dict]] = {}
    for pod in listed(api, "Pod", namespace, f"{LABEL_LAB}={lab},{LABEL_NODE}"):
        found.setdefault(pod["metadata"]["labels"][LABEL_NODE], []).append(pod)
    return found


def meta_value(document: dict, key: str, default: str = "") -> str:
    """A plan label of an object: kept as a label, or as an annotation when it is no valid label value."""
    meta = document.get("metadata", {})
    return (meta.get("labels") or {}).get(key) or (meta.get("annotations") or {}).get(key) or default
