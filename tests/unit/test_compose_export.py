"""compose.yaml is the export of topology/default.yaml, and the export mirrors the plan."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from lab.export.compose import compose_document, compose_files, compose_text
from lab.plan import LabState, make_plan
from lab.plan.route_script import ROUTE_SCRIPT
from lab.topology import load_text, load_topology


def default_plan(root):
    return make_plan(load_topology(root / "topology" / "default.yaml"), LabState())


def test_committed_compose_file_is_the_export_of_the_default_topology(root):
    expected = compose_text(default_plan(root), "compose.d/shop", "topology/default.yaml")
    assert (root / "compose.yaml").read_text() == expected, (
        "compose.yaml is stale: run `lab export compose topology/default.yaml --no-files`")


def test_every_node_keeps_its_image_addresses_labels_and_files(root):
    plan = default_plan(root)
    document = compose_document(plan, "compose.d/shop", "topology/default.yaml")
    for container in plan.containers:
        service = document["services"][container.name]
        assert service["image"] == f"lab/{container.service}:latest"
        addresses = {plan_net.docker_name: service["networks"][plan_net.name]["ipv4_address"]
                     for plan_net in plan.networks if plan_net.name in service["networks"]}
        assert addresses == dict(container.addresses)
        assert service["labels"]["lab.name"] == "shop" and service["labels"]["lab.node"] == container.name
        assert f"./compose.d/shop/{container.name}:/lab" in service["volumes"]
        companion = document["services"].get(f"{container.name}-routes")
        assert (companion is None) == ("NET_ADMIN" in container.capabilities)


def test_stages_become_health_gated_dependencies(root):
    document = compose_document(default_plan(root), "compose.d/shop", "topology/default.yaml")
    assert document["services"]["lb"]["depends_on"]["app-1"] == {"condition": "service_healthy"}
    assert "depends_on" not in document["services"]["fw"]


def test_files_are_the_planned_ones(root):
    plan = default_plan(root)
    files = compose_files(plan, "compose.d/shop")
    planned = plan.container("laptop").files["routes"]
    assert files["compose.d/shop/laptop/routes"] == planned
    assert any(":" in line for line in planned.splitlines())   # its IPv6 routes are among them
    assert yaml.safe_load(compose_text(plan, "x", "y"))["version"] == "2.4"


def test_dual_stack_networks_and_addresses_reach_the_compose_file(root):
    """Every network with an IPv6 prefix is made with IPv6 on and that prefix (and the plan's
    engine gateway), and every node keeps its IPv6 address on it: without them the lab runs
    IPv4 only under docker-compose."""
    plan = default_plan(root)
    document = compose_document(plan, "compose.d/shop", "topology/default.yaml")
    dual = [network for network in plan.networks if network.subnet6]
    assert dual, "the default lab is dual-stack"
    for network in dual:
        exported = document["networks"][network.name]
        assert exported["enable_ipv6"] is True
        assert {"subnet": network.subnet6, "gateway": network.gateway6} in exported["ipam"]["config"]
    for container in plan.containers:
        networks = document["services"][container.name]["networks"]
        exported6 = {plan_net.docker_name: networks[plan_net.name]["ipv6_address"]
                     for plan_net in plan.networks if "ipv6_address" in networks.get(plan_net.name, {})}
        assert exported6 == dict(container.addresses6)
    assert document["services"]["lb"]["networks"]["dmz"]["ipv6_address"] == "fd6c:6162:198:10::a"


def test_an_ipv4_only_network_gets_no_ipv6_keys(root):
    text = (root / "topology" / "default.yaml").read_text()
    ipv4_only = re.sub(r',\s*subnet6: "[^"]+"', "", text)
    assert "subnet6" not in ipv4_only
    plan = make_plan(load_text(ipv4_only, "<v4>"), LabState())
    document = compose_document(plan, "compose.d/shop", "<v4>")
    assert all("enable_ipv6" not in n and len(n["ipam"]["config"]) == 1 for n in document["networks"].values())
    assert not any("ipv6_address" in attachment for service in document["services"].values()
                   for attachment in service.get("networks", {}).values())


def test_docker_compose_reads_every_script_and_probe_as_written(root):
    """compose substitutes $VARS in the file: the export doubles every $, so the database's
    probe (a shell script full of them) reaches the container as the plan has it. Checked by
    Debian's docker-compose itself, which refuses a ${...} it cannot substitute."""
    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs docker-compose (scripts/setup.sh installs it)")
        pytest.skip("no docker-compose: apt-get install docker-compose")
    result = subprocess.run([compose, "-f", str(root / "compose.yaml"), "config"], capture_output=True,
                            text=True, timeout=120, cwd=root)
    assert result.returncode == 0 and "is not set" not in result.stderr, result.stderr
    config = yaml.safe_load(result.stdout)   # `config` writes the file back, its $ doubled again
    plan = default_plan(root)
    probe = [part.replace("$", "$$") for part in plan.container("db").probe.command]
    assert "$" in "".join(plan.container("db").probe.command)
    assert config["services"]["db"]["healthcheck"]["test"] == ["CMD", *probe]
    routes = config["services"]["db-routes"]["entrypoint"][-1]
    assert routes == ROUTE_SCRIPT.replace("$", "$$")
