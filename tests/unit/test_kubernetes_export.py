"""`lab export kubernetes`: every object valid for the Kubernetes API, offline, and the lab kept whole.

The Kubernetes objects are checked against the API's own OpenAPI schemas (the
kubernetes-validate package ships them, strict: an unknown field fails), the
NetworkAttachmentDefinitions against the CRD's schema kept in tests/fixtures.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from lab.cli import main
from lab.export.kubernetes import (NETWORKS_ANNOTATION, bridge_name, config_key, kubernetes_documents,
                                   manifest_files)
from lab.export.kubernetes_links import LINK_MTU, VNI_FIRST, links_table, vxlan_ids
from lab.plan import LabState, make_plan
from lab.plan.seal import SEAL6_FILE
from lab.plan.web import SECRET_FILES
from lab.topology import load_text, load_topology
from tests.generated import generated_topology

KUBERNETES_VERSION = "1.30"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
GOLDEN = FIXTURES / "default"
GOLDEN_VXLAN = FIXTURES / "minimal-vxlan"    # the links DaemonSet, on the smallest lab
NAD_SCHEMA = json.loads((FIXTURES / "network-attachment-definition.schema.json").read_text())
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def default_plan(root):
    return make_plan(load_topology(root / "topology" / "default.yaml"), LabState())


def generated_plan(nodes: int):
    return make_plan(load_text(generated_topology(nodes), f"gen-{nodes}"), LabState())


def validate(document: dict) -> None:
    if document["kind"] == "NetworkAttachmentDefinition":
        jsonschema.validate(document, NAD_SCHEMA)
        config = json.loads(document["spec"]["config"])
        assert config["type"] == "bridge" and config["ipam"] == {"type": "static"}
        assert len(config["bridge"]) <= 15, "a Linux interface name is at most 15 characters"
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def by_kind(documents: list[dict], kind: str) -> list[dict]:
    return [d for d in documents if d["kind"] == kind]


def minimal_plan(root):
    return make_plan(load_topology(root / "topology" / "minimal.yaml"), LabState())


@pytest.mark.parametrize("links", ["bridge", "vxlan"])
@pytest.mark.parametrize("which", ["default", "generated-200"])
def test_every_object_is_valid_for_the_api(root, which, links):
    plan = default_plan(root) if which == "default" else generated_plan(200)
    documents = kubernetes_documents(plan, "topology/x.yaml", links=links)
    assert len(by_kind(documents, "DaemonSet")) == (links == "vxlan")
    assert len(by_kind(documents, "Deployment")) == len(plan.containers)
    assert len(by_kind(documents, "NetworkAttachmentDefinition")) == len(plan.networks)
    for document in documents:
        validate(document)
        assert DNS_LABEL.match(document["metadata"]["name"])
        for value in document["metadata"].get("labels", {}).values():
            assert LABEL_VALUE.match(value), f"{value!r} is not a valid label value"


def test_the_validators_refuse_what_the_api_refuses(root):
    """The checks above can fail: a misspelt field and a NAD without its config's type are caught."""
    deployment = by_kind(kubernetes_documents(default_plan(root), "x"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["hostName"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    nad = by_kind(kubernetes_documents(default_plan(root), "x"), "NetworkAttachmentDefinition")[0]
    nad["spec"]["cni"] = "{}"
    with pytest.raises(jsonschema.ValidationError):
        validate(nad)


def test_each_node_keeps_its_static_addresses_on_its_networks(root):
    plan = default_plan(root)
    documents = kubernetes_documents(plan, "x")
    networks = {d["metadata"]["name"] for d in by_kind(documents, "NetworkAttachmentDefinition")}
    subnets = {n.docker_name: ipaddress.ip_network(n.subnet) for n in plan.networks}
    names = {n.docker_name: n.name for n in plan.networks}
    for container in plan.containers:
        pod = next(d for d in by_kind(documents, "Deployment") if d["metadata"]["name"] == container.name)
        requests = json.loads(pod["spec"]["template"]["metadata"]["annotations"][NETWORKS_ANNOTATION])
        asked = {r["name"]: r["ips"] for r in requests}
        assert set(asked) <= networks
        # IPv4 first (what `lab status` reads), then the node's IPv6 address on a dual-stack network
        expected = {names[net]: [f"{address}/{subnets[net].prefixlen}"]
                    + ([f"{container.addresses6[net]}/64"] if net in container.addresses6 else [])
                    for net, address in container.addresses.items()}
        assert asked == expected


def test_nodes_are_sealed_as_on_docker(root):
    """No cluster route, DNS, token or service variables reach a node; only forwarding kinds
    hold NET_ADMIN themselves, the others get their routes and seal from an init container."""
    plan = default_plan(root)
    for container in plan.containers:
        deployment = next(d for d in by_kind(kubernetes_documents(plan, "x"), "Deployment")
                          if d["metadata"]["name"] == container.name)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
        assert pod["dnsPolicy"] == "None"
        resolvers = [line.split()[1] for line in container.files.get("resolv.conf", "").splitlines()
                     if line.startswith("nameserver")]
        assert pod["dnsConfig"]["nameservers"] == (resolvers or ["127.0.0.1"])
        node = pod["containers"][0]
        added = node.get("securityContext", {}).get("capabilities", {}).get("add", [])
        assert added == list(container.capabilities)
        init = {c["name"]: c for c in pod["initContainers"]}
        if "NET_ADMIN" in container.capabilities:
            assert "lab-routes" not in init
        else:
            routes = {e["name"]: e["value"] for e in init["lab-routes"]["env"]}
            assert routes["LAB_ROUTES"] == container.files["routes"]
            assert routes.get("LAB_SEAL6") == container.files.get(SEAL6_FILE)
            assert init["lab-routes"]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]


def test_the_default_lab_stays_dual_stack_on_a_cluster(root):
    """The IPv6 half of every node: its IPv6 address on each dual-stack network in the Multus
    request, its IPv6 routes and IPv6 seal in the route init container, the IPv6 sysctls, and
    the firewall's ip6tables files. Without them the lab would run IPv4 only on a cluster."""
    plan = default_plan(root)
    documents = kubernetes_documents(plan, "x")
    deployments = {d["metadata"]["name"]: d for d in by_kind(documents, "Deployment")}
    configs = {d["metadata"]["name"]: d["data"] for d in by_kind(documents, "ConfigMap")}

    def ips(node: str) -> dict[str, list[str]]:
        template = deployments[node]["spec"]["template"]
        return {r["name"]: r["ips"] for r in json.loads(template["metadata"]["annotations"][NETWORKS_ANNOTATION])}

    assert ips("laptop") == {"home": ["100.64.10.10/24", "fd6c:6162:64:10::a/64"]}
    assert ips("fw")["data"] == ["198.18.30.1/24", "fd6c:6162:198:30::1/64"]
    assert all(len(addresses) == 2 for node in deployments for addresses in ips(node).values())
    laptop = deployments["laptop"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in next(c for c in laptop["initContainers"] if c["name"] == "lab-routes")["env"]}
    assert "default via fd6c:6162:64:10::1" in env["LAB_ROUTES"].splitlines()
    assert "ip6tables" not in env["LAB_SEAL"] and "*raw" in env["LAB_SEAL6"]
    sysctls = {s["name"]: s["value"] for s in laptop["securityContext"]["sysctls"]}
    assert sysctls["net.ipv6.conf.all.disable_ipv6"] == "0"
    fw_sysctls = {s["name"]: s["value"] for s in deployments["fw"]["spec"]["template"]["spec"]["securityContext"]["sysctls"]}
    assert fw_sysctls["net.ipv6.conf.all.forwarding"] == "1"
    assert "ip6tables.rules" in configs["fw-lab"] and "-A FORWARD" in configs["fw-lab"]["ip6tables.rules"]


def test_every_lab_file_reaches_the_node_and_secrets_stay_in_secrets(root):
    plan = default_plan(root)
    documents = kubernetes_documents(plan, "x")
    for container in plan.containers:
        stored = {}
        for document in documents:
            if document["kind"] in ("ConfigMap", "Secret") and document["metadata"]["name"] == f"{container.name}-lab":
                stored.update({(document["kind"], k): v for k, v in
                               (document.get("data") or document.get("stringData")).items()})
        for path, content in container.all_files().items():
            secret = path in SECRET_FILES
            assert stored[("Secret" if secret else "ConfigMap", config_key(path))] == content, path


def test_bridges_are_unique_per_lab_and_network(root):
    plans = [default_plan(root), generated_plan(50)]
    bridges = [bridge_name(p, n) for p in plans for n in p.networks]
    assert len(set(bridges)) == len(bridges)


def golden_sets(root) -> dict[Path, dict[str, str]]:
    return {GOLDEN: manifest_files(default_plan(root), "topology/default.yaml"),
            GOLDEN_VXLAN: manifest_files(minimal_plan(root), "topology/minimal.yaml", links="vxlan")}


def test_golden_manifests_of_the_default_lab_and_of_vxlan_links(root):
    """The default lab's manifests, and the minimal lab's with --links vxlan, committed: a change
    to the export shows in review. Regenerate: python3 -m tests.unit.test_kubernetes_export"""
    for folder, files in golden_sets(root).items():
        assert sorted(files) == sorted(p.name for p in folder.glob("*.yaml"))
        for name, text in files.items():
            assert (folder / name).read_text() == text, f"{folder.name}/{name} differs: regenerate the golden files"


def test_vxlan_ids_are_stable_and_never_shared_within_a_lab():
    networks = [f"net{i}" for i in range(300)]
    ids = vxlan_ids("shop", networks)
    assert ids == vxlan_ids("shop", list(reversed(networks)))          # the order they are written in
    assert len(set(ids.values())) == len(networks)
    assert all(VNI_FIRST <= vni < 1 << 24 for vni in ids.values())
    assert vxlan_ids("shop-2", networks) != ids                        # a copy of the lab gets its own
    # Forced to meet (room for 5 ids only), the ids still differ: a taken one moves to the next free.
    crowded = vxlan_ids("shop", networks[:5], first=100, span=5)
    assert sorted(crowded.values()) == [100, 101, 102, 103, 104]


def test_vxlan_links_join_each_network_and_fit_the_tunnel(root):
    """The DaemonSet carries exactly the plan's networks, each NAD names the bridge the DaemonSet
    joins to its VXLAN device, at the lab's MTU; host network and NET_ADMIN, nothing more."""
    plan = minimal_plan(root)
    documents = kubernetes_documents(plan, "x", links="vxlan")
    daemonset = by_kind(documents, "DaemonSet")[0]
    table = links_table(plan)
    assert json.loads(daemonset["metadata"]["annotations"]["lab.links"]) == table
    pod = daemonset["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}
    assert sorted(env["LAB_LINKS"].splitlines()) == sorted(f"{t['vni']} {t['bridge']}" for t in table.values())
    assert env["NODE_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert pod["hostNetwork"] is True and pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"] == {"capabilities": {"add": ["NET_ADMIN"]}}
    for nad in by_kind(documents, "NetworkAttachmentDefinition"):
        config = json.loads(nad["spec"]["config"])
        assert config["bridge"] == table[nad["metadata"]["name"]]["bridge"] and config["mtu"] == LINK_MTU
    service = by_kind(documents, "Service")[0]
    assert service["spec"]["selector"] == daemonset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"
    # the tunnels' peers are A records: IPv4 named first, IPv6 beside it where the cluster has both
    assert service["spec"]["ipFamilyPolicy"] == "PreferDualStack" and service["spec"]["ipFamilies"] == ["IPv4"]
    bridge_only = kubernetes_documents(plan, "x")
    assert not by_kind(bridge_only, "DaemonSet") and all(
        "mtu" not in json.loads(n["spec"]["config"]) for n in by_kind(bridge_only, "NetworkAttachmentDefinition"))


def test_cli_writes_the_manifests_and_refuses_a_bad_namespace(root, tmp_path, capsys):
    target = tmp_path / "k8s"
    with pytest.raises(SystemExit) as done:
        main(["export", "kubernetes", str(root / "topology" / "minimal.yaml"), "-o", str(target), "-n", "class-1"])
    assert done.value.code == 0
    written = sorted(p.name for p in target.iterdir())
    assert written[0] == "00-namespace.yaml" and "30-nodes.yaml" in written
    for path in target.iterdir():
        assert path.stat().st_mode & 0o077 == 0, "the manifests hold keys: only their owner reads them"
        for document in yaml.safe_load_all(path.read_text()):
            validate(document)
            assert document["metadata"].get("namespace", "class-1") == "class-1"
    linked = tmp_path / "k8s-vxlan"
    with pytest.raises(SystemExit) as done:
        main(["export", "kubernetes", str(root / "topology" / "minimal.yaml"), "-o", str(linked), "--links", "vxlan"])
    assert done.value.code == 0
    links = list(yaml.safe_load_all((linked / "05-links.yaml").read_text()))
    assert [d["kind"] for d in links] == ["Service", "DaemonSet"]
    for document in links:
        validate(document)
    with pytest.raises(SystemExit) as done:
        main(["export", "kubernetes", str(root / "topology" / "minimal.yaml"), "-o", str(target), "-n", "Class_1"])
    assert done.value.code == 2
    assert "is not a namespace name" in capsys.readouterr().err


if __name__ == "__main__":
    ROOT = Path(__file__).resolve().parents[2]
    for folder, golden in golden_sets(ROOT).items():
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.yaml"):
            old.unlink()
        for file_name, content in golden.items():
            (folder / file_name).write_text(content)
        print(f"wrote {folder}")
