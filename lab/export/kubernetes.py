"""A lab's plan as Kubernetes manifests, for people who apply manifests themselves.

The same plan `lab up` runs on Docker, rendered for a cluster with Multus:
- one Namespace per lab (`lab-<name>` unless told otherwise);
- per lab network a NetworkAttachmentDefinition: a Linux bridge on the cluster
  node (bridge CNI, static IPAM), so the topology's addresses are kept exactly;
- per node a Deployment of one pod, whose network annotation asks Multus for the
  node's static addresses on each of its networks (IPv4, and IPv6 on a network with a
  prefix: a dual-stack lab stays dual-stack), a ConfigMap and a Secret with
  its rendered /lab files, and the capabilities its kind needs and nothing more;
- per data volume a PersistentVolumeClaim.

The pod is sealed the way a Docker node is: an init container with NET_ADMIN
replaces the cluster's default route with the lab's routes and loads the seal
rules before the node's own programs start (the node itself gets no NET_ADMIN
unless its kind forwards), cluster DNS is replaced by the lab's resolver, and
neither a service-account token nor service environment variables reach it.

Pure: returns documents; the caller writes them.
"""

from __future__ import annotations

import ipaddress
import json
import re

import yaml

from lab.export.kubernetes_links import (LINK_MODES, LINK_MTU, PRIVILEGED_NAMESPACE, VXLAN, bridge_name,
                                         links_documents)
from lab.plan.model import LABEL_FILE, LABEL_KIND, LABEL_LAB, LABEL_NODE, ContainerPlan, NetworkPlan, Plan
from lab.plan.route_script import ROUTE_SCRIPT
from lab.plan.seal import SEAL6_FILE, SEAL_FILE
from lab.plan.web import SECRET_FILES

NAD_API = "k8s.cni.cncf.io/v1"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
CNI_VERSION = "0.3.1"
LAB_DIR = "/lab"
# Files are copied from these read-only mounts into an emptyDir at /lab, which
# stays writable as it is on Docker (lab-init and the services write beside them).
CONFIG_MOUNT = "/lab-config"
SECRET_MOUNT = "/lab-secrets"
DEFAULT_VOLUME_SIZE = "1Gi"

NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")   # an RFC 1123 label
# A label value: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric.
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")


def namespace_for(plan: Plan, namespace: str | None = None) -> str:
    return namespace or f"lab-{plan.lab}"


def config_key(path: str) -> str:
    """A ConfigMap/Secret key for a /lab path: keys may not hold '/', so it becomes '__'."""
    return path.replace("/", "__")


def _metadata(name: str, namespace: str | None, labels: dict[str, str],
              annotations: dict[str, str] | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


def _split_labels(labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The plan's labels that are valid Kubernetes label values stay labels; the rest
    (a file path, a probe's words) become annotations, which take any text."""
    kept = {k: v for k, v in labels.items() if _LABEL_VALUE.match(v)}
    return kept, {k: v for k, v in labels.items() if k not in kept}


def network_attachment(plan: Plan, network: NetworkPlan, namespace: str, links: str = "bridge") -> dict:
    config: dict = {
        "cniVersion": CNI_VERSION, "name": network.docker_name, "type": "bridge",
        "bridge": bridge_name(plan, network),
        # No gateway on the bridge and no masquerade: the lab's own routers route,
        # and the cluster node never becomes a way out of the lab.
        "isGateway": False, "ipMasq": False,
        "ipam": {"type": "static"},
    }
    if links == VXLAN:
        config["mtu"] = LINK_MTU     # the pods' frames must fit the tunnel (kubernetes_links.py)
    labels = {LABEL_LAB: plan.lab, "lab.network": network.name}
    return {"apiVersion": NAD_API, "kind": "NetworkAttachmentDefinition",
            "metadata": _metadata(network.name, namespace, labels),
            "spec": {"config": json.dumps(config, sort_keys=True)}}


def _network_requests(plan: Plan, container: ContainerPlan, namespace: str) -> list[dict]:
    by_engine_name = {n.docker_name: n for n in plan.networks}
    requests = []
    for index, (engine_name, address) in enumerate(container.addresses.items(), start=1):
        network = by_engine_name[engine_name]
        prefix = ipaddress.ip_network(network.subnet).prefixlen
        ips = [f"{address}/{prefix}"]           # IPv4 first: what `lab status` reads as the node's address
        if engine_name in container.addresses6 and network.subnet6:
            ips.append(f"{container.addresses6[engine_name]}/{ipaddress.ip_network(network.subnet6).prefixlen}")
        requests.append({"name": network.name, "namespace": namespace, "ips": ips, "interface": f"net{index}"})
    return requests


def _nameservers(container: ContainerPlan) -> list[str]:
    lines = container.files.get("resolv.conf", "").splitlines()
    servers = [line.split()[1] for line in lines if line.startswith("nameserver ") and len(line.split()) > 1]
    # Never the cluster's DNS: a node without a lab resolver asks nobody.
    return servers or ["127.0.0.1"]


def _files_init(container: ContainerPlan, image: str) -> dict:
    return {
        "name": "lab-files", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c",
                    f"cp -RL {CONFIG_MOUNT}/. {LAB_DIR}/ && "
                    f"{{ [ ! -d {SECRET_MOUNT} ] || cp -RL {SECRET_MOUNT}/. {LAB_DIR}/; }} && "
                    # The modes a Docker node's files get: the services tighten them at start.
                    f"chmod -R u=rwX,go=rX {LAB_DIR}"],
        "volumeMounts": [{"name": "lab", "mountPath": LAB_DIR},
                         {"name": "lab-config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                         *([{"name": "lab-secrets", "mountPath": SECRET_MOUNT, "readOnly": True}]
                           if _secret_paths(container) else [])],
    }


def _routes_init(container: ContainerPlan, image: str) -> dict:
    return {
        "name": "lab-routes", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", ROUTE_SCRIPT],
        "env": [{"name": "LAB_ROUTES", "value": container.files.get("routes", "")},
                {"name": "LAB_SEAL", "value": container.files.get(SEAL_FILE, "")},
                # a dual-stack node: its IPv6 seal goes in before its IPv6 routes, as on Docker
                *([{"name": "LAB_SEAL6", "value": container.files[SEAL6_FILE]}] if SEAL6_FILE in container.files
                  else [])],
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
    }


def _secret_paths(container: ContainerPlan) -> list[str]:
    return sorted(p for p in container.all_files() if p in SECRET_FILES)


def _main_container(container: ContainerPlan, image: str) -> dict:
    main = {
        "name": "node", "image": image, "imagePullPolicy": "IfNotPresent",
        "volumeMounts": [{"name": "lab", "mountPath": LAB_DIR},
                         *({"name": volume, "mountPath": path} for volume, path in container.volumes.items())],
        "readinessProbe": {"exec": {"command": list(container.probe.command)},
                           "periodSeconds": 2, "timeoutSeconds": 5,
                           "failureThreshold": max(3, int(container.probe.timeout / 2))},
    }
    if container.capabilities:
        main["securityContext"] = {"capabilities": {"add": list(container.capabilities)}}
    return main


def deployment(plan: Plan, container: ContainerPlan, namespace: str, image: str, source: str) -> dict:
    # The file as the user named it (an absolute path would tie the manifests to one machine).
    labels, annotations = _split_labels({**container.labels, LABEL_FILE: source})
    selector = {LABEL_LAB: plan.lab, LABEL_NODE: container.name}
    pod_annotations = {NETWORKS_ANNOTATION: json.dumps(_network_requests(plan, container, namespace))}
    needs_routes = "NET_ADMIN" not in container.capabilities
    pod_spec: dict = {
        "hostname": container.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": _nameservers(container)},
        "initContainers": [_files_init(container, image)]
                          + ([_routes_init(container, image)] if needs_routes else []),
        "containers": [_main_container(container, image)],
        "volumes": _pod_volumes(container),
    }
    if container.sysctls:
        pod_spec["securityContext"] = {"sysctls": [{"name": k, "value": str(v)}
                                                   for k, v in sorted(container.sysctls.items())]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _metadata(container.name, namespace, {**labels, **selector}, annotations),
        "spec": {
            "replicas": 1,
            # Two pods of one node would claim the same static addresses: the old one goes first.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": {**selector, LABEL_KIND: container.kind},
                                      "annotations": pod_annotations},
                         "spec": pod_spec},
        },
    }


def _pod_volumes(container: ContainerPlan) -> list[dict]:
    plain = sorted(p for p in container.all_files() if p not in SECRET_FILES)
    volumes: list[dict] = [
        {"name": "lab", "emptyDir": {}},
        {"name": "lab-config", "configMap": {"name": f"{container.name}-lab",
                                             "items": [{"key": config_key(p), "path": p} for p in plain]}},
    ]
    secrets = _secret_paths(container)
    if secrets:
        volumes.append({"name": "lab-secrets",
                        "secret": {"secretName": f"{container.name}-lab", "defaultMode": 0o400,
                                   "items": [{"key": config_key(p), "path": p} for p in secrets]}})
    volumes += [{"name": volume, "persistentVolumeClaim": {"claimName": volume}}
                for volume in container.volumes]
    return volumes


def node_files(plan: Plan, container: ContainerPlan, namespace: str) -> list[dict]:
    """The ConfigMap (and the Secret, when the node holds a key or a password) with its /lab files."""
    files = container.all_files()
    labels = {LABEL_LAB: plan.lab, LABEL_NODE: container.name}
    documents = [{"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": _metadata(f"{container.name}-lab", namespace, labels),
                  "data": {config_key(p): c for p, c in sorted(files.items()) if p not in SECRET_FILES}}]
    secrets = _secret_paths(container)
    if secrets:
        documents.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                          "metadata": _metadata(f"{container.name}-lab", namespace, labels),
                          "stringData": {config_key(p): files[p] for p in secrets}})
    return documents


def volume_claim(plan: Plan, volume: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _metadata(volume, namespace, {LABEL_LAB: plan.lab}),
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": DEFAULT_VOLUME_SIZE}}}}


def kubernetes_documents(plan: Plan, source: str, namespace: str | None = None,
                         image_prefix: str = "", links: str = "bridge") -> list[dict]:
    """Every object of the lab, in the order `kubectl apply` needs them (namespace first, then
    the links that join its networks across cluster nodes, when asked for)."""
    if links not in LINK_MODES:
        raise ValueError(f"links is one of {LINK_MODES}, not {links!r}")
    ns = namespace_for(plan, namespace)
    # The links' pods use the host network: a namespace under Pod Security admission must allow it.
    labels = {LABEL_LAB: plan.lab, **(PRIVILEGED_NAMESPACE if links == VXLAN else {})}
    documents: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(ns, None, labels)}]
    if links == VXLAN:
        # Any lab image has the tools the links need (iproute2, getent): the first node's is on the cluster.
        service = next((c.service for c in plan.containers if c.service and not (c.image or c.build)),
                       plan.containers[0].service)
        documents += links_documents(plan, ns, f"{image_prefix}lab/{service}:latest")
    documents += [network_attachment(plan, network, ns, links) for network in plan.networks]
    volumes = sorted({volume for c in plan.containers for volume in c.volumes})
    documents += [volume_claim(plan, volume, ns) for volume in volumes]
    for container in plan.containers:
        image = f"{image_prefix}lab/{container.service}:latest"
        documents += node_files(plan, container, ns)
        documents.append(deployment(plan, container, ns, image, source))
    return documents


class _Dumper(yaml.SafeDumper):
    """Multi-line text (certificates, zone files) as literal blocks, readable as the files are."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A literal block cannot keep trailing spaces on a line exactly: those stay quoted.
    style = "|" if "\n" in value and not any(line.endswith(" ") for line in value.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def manifest_files(plan: Plan, source: str, namespace: str | None = None,
                   image_prefix: str = "", links: str = "bridge") -> dict[str, str]:
    """File name -> YAML text: one file per object kind group, numbered in apply order."""
    groups: dict[str, list] = {"00-namespace.yaml": [], "05-links.yaml": [], "10-networks.yaml": [],
                               "20-volumes.yaml": [], "30-nodes.yaml": []}
    folder_of = {"Namespace": "00-namespace.yaml", "Service": "05-links.yaml", "DaemonSet": "05-links.yaml",
                 "NetworkAttachmentDefinition": "10-networks.yaml", "PersistentVolumeClaim": "20-volumes.yaml"}
    for document in kubernetes_documents(plan, source, namespace, image_prefix, links):
        groups[folder_of.get(document["kind"], "30-nodes.yaml")].append(document)
    header = (f"# The lab '{plan.lab}' ({source}) for Kubernetes with Multus, made by "
              f"`lab export kubernetes`.\n# Apply in file order: kubectl apply -f DIR/ "
              f"(see docs/scale-out.md for what the cluster needs).\n")
    return {name: header + yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=120)
            for name, documents in groups.items() if documents}
