"""A recorded fake of the Kubernetes API, for the backend contract tests (no cluster runs here).

What is REAL: the HTTP and WebSocket traffic. The backend talks to this server
through the official `kubernetes` client, exactly as it would to a cluster (a
kubeconfig points at http://127.0.0.1:PORT), and every object it creates is
checked against what the real API requires: the Kubernetes 1.30 OpenAPI schemas
(kubernetes-validate, strict) and the NetworkAttachmentDefinition CRD schema in
tests/fixtures/kubernetes/; an invalid body gets the API's 422 and is recorded.

What is RECORDED, not real: what a cluster would do with the objects. A
Deployment of one replica gets one pod at once, Running and Ready (no kubelet
runs the readiness probe), with the network-status annotation Multus writes;
a pod's log is a canned text; exec answers `cat /lab/...` from the ConfigMap and
Secret the backend sent, and any other command from `recordings`, a table of
(exit status, stdout, stderr) per command, as a node would have printed them.
Namespace deletion is immediate (a cluster takes a while).
A DaemonSet gets one pod per node of `nodes` (two by default), Running and Ready
unless `links_problem` names a waiting reason for its pods; its status counts
them as the DaemonSet controller would, and a change to its pod template (the
links' cleanup mode) bumps its generation and replaces every pod (no script
runs: tests/integration/test_links_script.py runs that for real).
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
import json
import threading
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path

import jsonschema
import kubernetes_validate

from tests.integration.kubernetes_fake_http import Refusal, handler

__all__ = ["FakeCluster", "Refusal", "matches"]

KUBERNETES_VERSION = "1.30"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
NAD_SCHEMA = json.loads((FIXTURES / "network-attachment-definition.schema.json").read_text())
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
NETWORKS = "k8s.v1.cni.cncf.io/networks"


def matches(labels: dict, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if key not in labels or ("=" in term and labels[key] != value):
            return False
    return True


class FakeCluster:
    """The API's state: objects by (kind, namespace, name), and what the tests told it to do."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str | None, str], dict] = {}
        self.invalid: list[str] = []                    # bodies the real API would have refused
        self.calls: list[tuple[str, str]] = []          # (method, path) in order
        self.pod_problem: dict[str, str] = {}           # node -> a waiting reason its pod shows
        self.refuse: dict[tuple[str, str], str] = {}    # (kind, name) -> a 403 message for its create
        self.refuse_in: dict[tuple[str, str, str], str] = {}   # (kind, namespace, name) -> the same, in one namespace
        self.recordings: dict[tuple[str, ...], tuple[int, str, str]] = {}
        self.logs: dict[str, str] = {}
        self.nodes: dict[str, str] = {"kube-node-1": "10.220.254.1", "kube-node-2": "10.220.254.2"}
        self.stopping = False
        self.links_problem: str | None = None             # a waiting reason for the DaemonSets' pods
        self.forbidden_lists: set[str] = set()            # paths whose GET answers 403
        self.links_modes: list[str] = []                  # each DaemonSet template's mode, as its pods ran it
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeCluster":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping = True        # followed logs end
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "recorded-fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}]}))
        return path

    # looking (for the tests' independent observations) ------------------------------------

    def of_namespace(self, namespace: str) -> list[tuple[str, str]]:
        with self.lock:
            return sorted((kind, name) for kind, ns, name in self.objects
                          if ns == namespace or (kind == "Namespace" and name == namespace))

    def labelled(self, lab: str) -> list[tuple[str, str | None, str]]:
        with self.lock:
            return sorted(key for key, obj in self.objects.items()
                          if obj["metadata"].get("labels", {}).get("lab.name") == lab)

    def labelled_all(self) -> list[tuple[str, str | None, str]]:
        """Every object carrying a lab.name label, of any lab."""
        with self.lock:
            return sorted(key for key, obj in self.objects.items() if "lab.name" in obj["metadata"].get("labels", {}))

    def pods_of(self, namespace: str, node: str) -> list[dict]:
        with self.lock:
            return [o for (kind, ns, _), o in self.objects.items() if kind == "Pod" and ns == namespace
                    and o["metadata"]["labels"].get("lab.node") == node]

    # the API's behaviour ------------------------------------------------------------------

    def validate(self, kind: str, body: dict) -> None:
        try:
            if kind == "NetworkAttachmentDefinition":
                jsonschema.validate(body, NAD_SCHEMA)
                json.loads(body["spec"]["config"])
            else:
                kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError, ValueError) as error:
            text = f"{kind} {body.get('metadata', {}).get('name')}: {str(error).splitlines()[0]}"
            self.invalid.append(text)
            raise Refusal(422, "Invalid", text) from None

    def create(self, kind: str, api_version: str, namespace: str | None, body: dict) -> dict:
        if body.get("kind") != kind or body.get("apiVersion") != api_version:
            raise Refusal(400, "BadRequest", f"the body is a {body.get('kind')} {body.get('apiVersion')}, "
                          f"the path wants {kind} {api_version}")
        meta = body.setdefault("metadata", {})
        if namespace and meta.setdefault("namespace", namespace) != namespace:
            raise Refusal(400, "BadRequest", "the namespace of the provided object does not match the "
                          "namespace sent on the request")
        self.validate(kind, body)
        if (kind, meta["name"]) in self.refuse:
            raise Refusal(403, "Forbidden", self.refuse[(kind, meta["name"])])
        if (kind, namespace, meta["name"]) in self.refuse_in:
            raise Refusal(403, "Forbidden", self.refuse_in[(kind, namespace, meta["name"])])
        with self.lock:
            if namespace and ("Namespace", None, namespace) not in self.objects:
                raise Refusal(404, "NotFound", f'namespaces "{namespace}" not found')
            key = (kind, namespace, meta["name"])
            if key in self.objects:
                raise Refusal(409, "AlreadyExists", f'{kind} "{meta["name"]}" already exists')
            meta.update(uid=str(uuid.uuid4()), resourceVersion="1", creationTimestamp="2026-11-29T00:00:00Z")
            if kind in ("Deployment", "DaemonSet"):
                meta["generation"] = 1
            if kind == "Secret" and "stringData" in body:     # as the API stores them
                body["data"] = {k: base64.b64encode(v.encode()).decode()
                                for k, v in body.pop("stringData").items()}
            self.objects[key] = body
            if kind == "Deployment":
                self.reconcile(namespace, body)
            if kind == "DaemonSet":
                self.reconcile_daemonset(namespace, body)
        return body

    def _daemon_pods(self, namespace: str, daemonset: dict) -> list[tuple]:
        selector = ",".join(f"{a}={b}" for a, b in daemonset["spec"]["selector"]["matchLabels"].items())
        return [k for k, o in self.objects.items() if k[0] == "Pod" and k[1] == namespace
                and o["metadata"].get("ownerReferences", [{}])[0].get("name") == daemonset["metadata"]["name"]
                and matches(o["metadata"]["labels"], selector)]

    def reconcile_daemonset(self, namespace: str, daemonset: dict) -> None:
        """What the DaemonSet controller and the kubelets would do (recorded): one pod per node, of
        the current template; a template change replaces them all (maxUnavailable 100%)."""
        for key in self._daemon_pods(namespace, daemonset):
            del self.objects[key]
        template = daemonset["spec"]["template"]
        self.links_modes.append(template["metadata"].get("annotations", {}).get("lab.links-mode", "?"))
        for node, address in self.nodes.items():
            name = f"{daemonset['metadata']['name']}-{uuid.uuid4().hex[:5]}"
            status = ({"phase": "Pending", "hostIP": address, "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": [{"name": "links", "state": {"waiting": {
                           "reason": self.links_problem, "message": "recorded: back-off restarting"}}}]}
                      if self.links_problem else
                      {"phase": "Running", "hostIP": address, "podIP": address,
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "links", "ready": True, "state": {"running": {}}}]})
            self.objects[("Pod", namespace, name)] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "labels": dict(template["metadata"]["labels"]),
                             "annotations": dict(template["metadata"].get("annotations", {})),
                             "ownerReferences": [{"kind": "DaemonSet", "name": daemonset["metadata"]["name"]}]},
                "spec": {**template["spec"], "nodeName": node}, "status": status}
        ready = 0 if self.links_problem else len(self.nodes)
        daemonset["status"] = {"desiredNumberScheduled": len(self.nodes), "currentNumberScheduled": len(self.nodes),
                               "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
                               "updatedNumberScheduled": len(self.nodes),
                               "observedGeneration": daemonset["metadata"]["generation"]}

    def patch(self, kind: str, namespace: str, name: str, body: dict) -> dict:
        """A JSON merge patch (RFC 7386) of a DaemonSet or a Namespace, checked as the API would check
        the result."""
        with self.lock:
            found = self.objects.get((kind, namespace, name))
            if found is None:
                raise Refusal(404, "NotFound", f'{kind} "{name}" not found')
            patched = _merge(json.loads(json.dumps(found)), body)
            if kind == "DaemonSet" and patched["spec"]["selector"] != found["spec"]["selector"]:
                raise Refusal(422, "Invalid", f"{kind} {name}: spec.selector: field is immutable")
            checked = {k: v for k, v in patched.items() if k != "status"}
            checked["metadata"] = {k: v for k, v in patched["metadata"].items()
                                   if k not in ("uid", "resourceVersion", "creationTimestamp", "generation")}
            self.validate(kind, checked)
            self.objects[(kind, namespace, name)] = patched
            if kind == "DaemonSet":
                if patched["spec"]["template"] != found["spec"]["template"]:
                    patched["metadata"]["generation"] += 1
                self.reconcile_daemonset(namespace, patched)
            return patched

    def reconcile(self, namespace: str, deployment: dict) -> None:
        """What the Deployment and ReplicaSet controllers and the kubelet would do (recorded)."""
        name, spec = deployment["metadata"]["name"], deployment["spec"]
        template = spec["template"]
        pods = [k for k, o in self.objects.items() if k[0] == "Pod" and k[1] == namespace
                and matches(o["metadata"]["labels"], ",".join(f"{a}={b}" for a, b in
                                                             spec["selector"]["matchLabels"].items()))]
        for key in pods[spec.get("replicas", 1):]:
            del self.objects[key]
        for _ in range(spec.get("replicas", 1) - len(pods)):
            pod_name = f"{name}-{uuid.uuid4().hex[:5]}"
            self.objects[("Pod", namespace, pod_name)] = self._pod(namespace, pod_name, template)
        ready = sum(1 for k, o in self.objects.items() if k[0] == "Pod" and k[1] == namespace
                    and o["metadata"]["labels"].get("lab.node") == template["metadata"]["labels"]["lab.node"]
                    and o["status"]["phase"] == "Running")
        deployment["status"] = {"replicas": spec.get("replicas", 1), "readyReplicas": ready}

    def _pod(self, namespace: str, name: str, template: dict) -> dict:
        node = template["metadata"]["labels"]["lab.node"]
        requests = json.loads(template["metadata"]["annotations"][NETWORKS])
        attached = [{"name": f"{namespace}/{r['name']}", "interface": r["interface"],
                     "ips": [ip.split("/")[0] for ip in r["ips"]]} for r in requests]
        problem = self.pod_problem.get(node)
        status = ({"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [{"name": "node", "state": {"waiting": {
                       "reason": problem, "message": "recorded: the image is not on the cluster's node"}}}]}
                  if problem else
                  {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "node", "ready": True, "state": {"running": {}}}]})
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "labels": dict(template["metadata"]["labels"]),
                             "annotations": {**template["metadata"]["annotations"],
                                             NETWORK_STATUS: json.dumps(attached)}},
                "spec": template["spec"], "status": status}

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        with self.lock:
            if (kind, namespace, name) not in self.objects:
                raise Refusal(404, "NotFound", f'{kind} "{name}" not found')
            gone = self.objects.pop((kind, namespace, name))
            if kind == "Namespace":
                for key in [k for k in self.objects if k[1] == name]:
                    del self.objects[key]
            if kind == "Deployment":    # foreground deletion: its pods go with it
                gone["spec"]["replicas"] = 0
                self.reconcile(namespace, gone)
            if kind == "DaemonSet":
                for key in self._daemon_pods(namespace, gone):
                    del self.objects[key]

    def scale(self, namespace: str, name: str, body: dict) -> dict:
        with self.lock:
            deployment = self.objects.get(("Deployment", namespace, name))
            if deployment is None:
                raise Refusal(404, "NotFound", f'deployments.apps "{name}" not found')
            deployment["spec"]["replicas"] = body["spec"]["replicas"]
            self.reconcile(namespace, deployment)
            return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"replicas": deployment["spec"]["replicas"]}}

    def listing(self, kind: str, namespace: str | None, selector: str) -> dict:
        with self.lock:
            items = [o for (k, ns, _), o in sorted(self.objects.items(), key=lambda i: str(i[0]))
                     if k == kind and (namespace is None or ns == namespace)
                     and matches(o["metadata"].get("labels", {}), selector)]
        return {"apiVersion": "v1", "kind": f"{kind}List", "metadata": {"resourceVersion": "1"},
                "items": json.loads(json.dumps(items))}

    def exec_answer(self, namespace: str, pod: str, command: list[str]) -> tuple[int, str, str]:
        with self.lock:
            found = self.objects.get(("Pod", namespace, pod))
            if found is None:
                raise Refusal(404, "NotFound", f'pods "{pod}" not found')
            node = found["metadata"]["labels"]["lab.node"]
            if len(command) == 2 and command[0] == "cat" and command[1].startswith("/lab/"):
                return self._lab_file(namespace, node, command[1])
        return self.recordings.get(tuple(command), (126, "", f"fake cluster: no recording for {command}\n"))

    def _lab_file(self, namespace: str, node: str, path: str) -> tuple[int, str, str]:
        key = path.removeprefix("/lab/").replace("/", "__")
        config = self.objects.get(("ConfigMap", namespace, f"{node}-lab"), {}).get("data", {})
        secret = self.objects.get(("Secret", namespace, f"{node}-lab"), {}).get("data", {})
        if key in config:
            return 0, config[key], ""
        if key in secret:
            return 0, base64.b64decode(secret[key]).decode(), ""
        return 1, "", f"cat: {path}: No such file or directory\n"


def _merge(target, patch):
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    target = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


@contextmanager
def serving(kubeconfig: Path, recordings: dict | None = None):
    """A fake cluster for a test module: KUBECONFIG points at it while the block runs, and at
    the end nothing the backend sent may be what the real API would refuse."""
    import pytest   # only the tests use this part

    with FakeCluster() as cluster, pytest.MonkeyPatch.context() as patch:
        cluster.recordings.update(recordings or {})
        patch.setenv("KUBECONFIG", str(cluster.kubeconfig(kubeconfig)))
        yield cluster
        assert cluster.invalid == [], "the backend sent objects the real API would refuse"
