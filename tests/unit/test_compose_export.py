"""compose.yaml is the export of topology/default.yaml, and the export mirrors the plan."""

import yaml

from lab.export.compose import compose_document, compose_files, compose_text
from lab.plan import LabState, make_plan
from lab.topology import load_topology


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
    # compose runs the lab over IPv4 only: the planned routes less the IPv6 ones
    assert files["compose.d/shop/laptop/routes"] == "".join(f"{line}\n" for line in planned.splitlines()
                                                            if ":" not in line)
    assert yaml.safe_load(compose_text(plan, "x", "y"))["version"] == "2.4"
