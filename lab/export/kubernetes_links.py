"""How a lab's networks span a cluster's nodes: one bridge per node, or bridges joined by VXLAN.

`--links bridge` (the default) is a Linux bridge per lab network on each cluster
node, made by the bridge CNI plugin: pods of one network meet only on one node.
`--links vxlan` adds, in the lab's namespace, a DaemonSet that on every node
makes the same bridges and joins each to a VXLAN device of the network's own id
(VNI), with forwarding entries toward every other node, so the bridges of one
network form one L2 segment across the cluster. The other nodes' addresses come
from a headless Service over the DaemonSet's own pods: they use the host
network, so the Service's DNS name resolves to the nodes' addresses, and no
credentials or cluster-wide rights are needed. Only standard pieces: the kernel's
vxlan module, UDP 4789 between nodes, one NET_ADMIN pod per node.

Pure: returns documents.
"""

from __future__ import annotations

import hashlib
import json

from lab.export.links_script import LINKS_SCRIPT
from lab.plan.model import LABEL_LAB, NetworkPlan, Plan

LINK_MODES = ("bridge", "vxlan")
VXLAN = "vxlan"
LINKS_NAME = "lab-links"               # the DaemonSet and its headless Service
LABEL_LINKS = "lab.links"
MODE_ANNOTATION = "lab.links-mode"     # up | down: `lab down` switches it to remove the devices
IDS_ANNOTATION = "lab.links"           # {network: {"vni": N, "bridge": NAME}}: what the lab holds
READY_FILE = "/tmp/lab-links-ready"
VXLAN_PORT = 4789
# 1400 inside the lab: a frame plus VXLAN's 50 bytes fits any underlay of 1450 or more.
LINK_MTU = 1400
# VNIs from 2^20 up: clear of the low ids other CNIs use (flannel 1, Calico 4096) on port 4789.
VNI_FIRST = 1 << 20
VNI_SPAN = (1 << 24) - VNI_FIRST
PRIVILEGED_NAMESPACE = {"pod-security.kubernetes.io/enforce": "privileged"}


def bridge_name(plan: Plan, network: NetworkPlan) -> str:
    """The cluster node's bridge for one lab network: unique per lab and network, and within
    Linux's 15-character interface-name limit (a lab's names can be longer)."""
    digest = hashlib.sha256(f"{plan.lab}/{network.name}".encode()).hexdigest()[:10]
    return f"lab{digest}"


def vxlan_ids(lab: str, networks: list[str], first: int = VNI_FIRST, span: int = VNI_SPAN) -> dict[str, int]:
    """network -> its VNI: derived from the lab's and the network's names (the same on every run
    and machine), and never shared by two networks of one lab (a taken id moves to the next)."""
    taken: set[int] = set()
    ids = {}
    for network in sorted(networks):
        offset = int(hashlib.sha256(f"{lab}/{network}".encode()).hexdigest(), 16) % span
        while first + offset in taken:
            offset = (offset + 1) % span
        taken.add(first + offset)
        ids[network] = first + offset
    return ids


def links_table(plan: Plan) -> dict[str, dict]:
    """network -> {"vni", "bridge"}: the devices the DaemonSet makes on every node."""
    ids = vxlan_ids(plan.lab, [n.name for n in plan.networks])
    return {n.name: {"vni": ids[n.name], "bridge": bridge_name(plan, n)} for n in plan.networks}


def _labels(plan: Plan) -> dict[str, str]:
    return {LABEL_LAB: plan.lab, LABEL_LINKS: VXLAN}


def links_service(plan: Plan, namespace: str) -> dict:
    """Headless, over the DaemonSet's host-network pods: its name resolves to every node's address,
    ready or not (a node must know its peers before its own first pass succeeds)."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": LINKS_NAME, "namespace": namespace, "labels": _labels(plan)},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": _labels(plan),
                     # The tunnels run between the nodes' IPv4 addresses (the script asks for A
                     # records): IPv4 is named first so a cluster whose first family is IPv6 still
                     # publishes them; a dual-stack cluster adds its IPv6 ones (AAAA) beside.
                     "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4"],
                     "ports": [{"name": "vxlan", "protocol": "UDP", "port": VXLAN_PORT}]}}


def _env(plan: Plan, namespace: str) -> list[dict]:
    table = links_table(plan)
    lines = "".join(f"{entry['vni']} {entry['bridge']}\n" for entry in table.values())
    return [{"name": "LAB_LINKS", "value": lines},
            {"name": "LAB_LINKS_MODE",
             "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{MODE_ANNOTATION}']"}}},
            {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "LAB_PEERS_NAME", "value": f"{LINKS_NAME}.{namespace}.svc"},
            {"name": "LAB_LINKS_MTU", "value": str(LINK_MTU)},
            {"name": "LAB_LINKS_READY", "value": READY_FILE}]


def links_daemonset(plan: Plan, namespace: str, image: str) -> dict:
    table = links_table(plan)
    container = {
        "name": "links", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", LINKS_SCRIPT],
        "env": _env(plan, namespace),
        # Devices in the node's own namespace: NET_ADMIN there, nothing more (not privileged).
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        "readinessProbe": {"exec": {"command": ["cat", READY_FILE]}, "periodSeconds": 2},
    }
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": LINKS_NAME, "namespace": namespace, "labels": _labels(plan),
                     "annotations": {IDS_ANNOTATION: json.dumps(table, sort_keys=True)}},
        "spec": {
            "selector": {"matchLabels": _labels(plan)},
            # Switching to the cleanup mode replaces every node's pod at once.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {
                "metadata": {"labels": _labels(plan), "annotations": {MODE_ANNOTATION: "up"}},
                "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
                         "automountServiceAccountToken": False, "enableServiceLinks": False,
                         "terminationGracePeriodSeconds": 30, "containers": [container]},
            },
        },
    }


def links_documents(plan: Plan, namespace: str, image: str) -> list[dict]:
    return [links_service(plan, namespace), links_daemonset(plan, namespace, image)]
