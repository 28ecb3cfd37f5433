"""The seal as planned: bridge options, each node's raw-table drops, the firewall's gateway rule."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml

from lab.export.compose import compose_document
from lab.firewall.policy import Flow, decide, node_policy
from lab.plan import make_plan
from lab.plan.seal import EMBEDDED_DNS, SEAL_FILE, SEALED_BRIDGE_OPTIONS
from lab.topology import load_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shop():
    return load_text((ROOT / "topology" / "default.yaml").read_text(), "default.yaml")


def _drops(text: str, chain: str) -> set[str]:
    """Destinations dropped in a raw-table chain of an iptables-restore file."""
    raw = text.split("*raw", 1)[1].split("COMMIT", 1)[0]
    return {line.split("-d ")[1].split("/")[0] for line in raw.splitlines()
            if line.startswith(f"-A {chain} ") and line.endswith("-j DROP")}


def test_bridges_do_not_masquerade():
    assert SEALED_BRIDGE_OPTIONS == {"com.docker.network.bridge.enable_ip_masquerade": "false"}


def test_every_node_that_does_not_forward_drops_every_gateway_and_the_engine_dns(shop):
    gateways = {str(g) for g in shop.gateways.values()}
    assert len(gateways) == len(shop.spec.networks)
    for container in make_plan(shop).containers:
        if container.kind in ("router", "firewall"):
            assert SEAL_FILE not in container.files
            continue
        seal = container.files[SEAL_FILE]
        assert _drops(seal, "OUTPUT") == gateways | {EMBEDDED_DNS}, container.name
        # an empty nat table: iptables-restore flushes the engine's DNS redirection
        nat = seal.split("*nat", 1)[1]
        assert "-A " not in nat and "DOCKER_OUTPUT" not in nat


def test_routers_drop_what_they_would_forward_to_a_gateway_firewalls_name_it(shop):
    plan = make_plan(shop)
    gateways = {str(g) for g in shop.gateways.values()}
    router = plan.container("isp-router").live_files
    firewall = plan.container("fw").live_files
    for files in (router, firewall):
        for name in ("iptables.rules", "iptables-logging.rules"):
            assert _drops(files[name], "OUTPUT") == gateways | {EMBEDDED_DNS}
    assert _drops(router["iptables.rules"], "PREROUTING") == gateways
    # the firewall decides forwarded traffic to the gateways in its filter table, counted
    assert _drops(firewall["iptables.rules"], "PREROUTING") == set()
    lines = [line for line in firewall["iptables.rules"].splitlines()
             if "--comment engine-gateway" in line]
    assert {line.split("-d ")[1].split("/")[0] for line in lines} == gateways
    assert all(line.startswith("-A FORWARD") and line.endswith("-j DROP") for line in lines)


def test_to_a_network_never_means_the_engines_host(shop):
    """`lb-to-apps` (to: apps) allows the apps, but the gateway on apps is denied first."""
    policy = node_policy(shop, "fw")
    lb = shop.instance("lb").address_on("dmz")
    app = shop.instance("app-1").address_on("apps")
    gateway = shop.gateways["apps"]
    port = next(r for r in policy if r.name == "lb-to-apps").ports[0][0]
    assert decide(policy, Flow(lb, app, "tcp", port)).name == "lb-to-apps"
    verdict = decide(policy, Flow(lb, gateway, "tcp", port))
    assert (verdict.name, verdict.action) == ("engine-gateway", "deny")
    assert decide(policy, Flow(lb, IPv4Address(int(gateway) - 1), "tcp", port)).name == "lb-to-apps"


def test_compose_export_uses_the_same_bridge_options_and_seal(shop):
    plan = make_plan(shop)
    document = yaml.safe_load(yaml.safe_dump(compose_document(plan, "d", "f")))
    for network in document["networks"].values():
        assert network["driver_opts"] == SEALED_BRIDGE_OPTIONS
    companion = document["services"]["db-routes"]
    assert companion["environment"]["LAB_SEAL"] == plan.container("db").files[SEAL_FILE]
