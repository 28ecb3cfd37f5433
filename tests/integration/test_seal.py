"""The seal on a real engine: listeners on the engine's host, bound to the gateway address
of lab networks, count what reaches them; the engine's NAT table and each node's own
rules are read back; the lab keeps working through its own DNS and web path."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from ipaddress import IPv4Network

import pytest

from lab.plan.seal import SEALED_BRIDGE_OPTIONS
from lab.backends.docker.helpers import run_helper
from lab.backends.docker.inspect import start_node, stop_node
from lab.backends.docker.netns import install_routes

from click.testing import CliRunner

from lab.cli import main

from .conftest import running_lab, topology_text

PORT = 18417
# Tries TCP connect and a UDP datagram to each address given; prints what connected.
ATTEMPT = r"""
import socket, sys
for address in sys.argv[1:]:
    try:
        socket.create_connection((address, int(PORT)), timeout=1).close()
        print("tcp-connected", address)
    except OSError as error:
        print("tcp-failed", address, error)
    u = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b"seal-probe", (address, int(PORT)))
    except OSError as error:
        print("udp-failed", address, error)
""".replace("PORT", str(PORT))


class HostListener:
    """TCP and UDP listeners on the host, bound to one address; counts what arrives."""

    def __init__(self, address: str, port: int = PORT):
        self.address, self.accepted, self.datagrams = address, 0, 0
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.tcp = socket.socket(family)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((address, port))
        self.tcp.listen(16)
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.udp.bind((address, port))
        for loop in (self._accept, self._receive):
            threading.Thread(target=loop, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.tcp.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def _receive(self):
        while True:
            try:
                self.udp.recvfrom(100)
            except OSError:
                return
            self.datagrams += 1

    def close(self):
        for sock in (self.tcp, self.udp):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture(scope="module")
def sealed(engine, images, tmp_path_factory):
    text = topology_text("default", "it-seal")
    file = tmp_path_factory.mktemp("seal") / "shop.yaml"
    file.write_text(text)     # a real file, so `lab check --seal` finds the topology like a user's lab
    with running_lab(engine, text, str(file)) as lab:
        lab.file = file
        yield lab


@pytest.fixture(scope="module")
def listeners(sealed):
    made = {name: HostListener(str(address)) for name, address in sealed.lab.gateways.items()}
    yield made
    for listener in made.values():
        listener.close()


def _in_namespace(lab, node: str, command: str) -> str:
    """Run a shell command with NET_ADMIN in a node's network namespace (as the runtime's
    route helper does): reads rules of nodes that may not read their own."""
    container = lab.client.containers.get(f"{lab.name}-{node}")
    output = lab.client.containers.run(
        container.image.id, entrypoint=["/bin/sh", "-c", command], command=[],
        network_mode=f"container:{container.id}", cap_add=["NET_ADMIN"], remove=True,
        labels={"lab.name": lab.name, "lab.role": "test-helper"})
    return output.decode(errors="replace")


def _wait_for(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _free_address(lab, network: str) -> str:
    used = {str(a) for i in lab.instances for n, a in i.addresses.items() if n == network}
    used.add(str(lab.gateways[network]))
    return next(str(h) for h in reversed(list(IPv4Network(str(lab.spec.networks[network].subnet)).hosts()))
                if str(h) not in used)


def test_lab_networks_are_bridges_that_do_not_masquerade(sealed):
    for network in sealed.plan.networks:
        options = sealed.client.networks.get(network.docker_name).attrs["Options"]
        assert options.get("com.docker.network.bridge.enable_ip_masquerade") == "false", (network.name, options)
        assert SEALED_BRIDGE_OPTIONS.items() <= options.items()


def test_the_engines_nat_table_has_no_masquerade_for_the_labs_subnets(sealed):
    if shutil.which("iptables") is None:
        pytest.skip("no iptables on this host to read the engine's NAT table with")
    result = subprocess.run(["iptables", "-t", "nat", "-S", "POSTROUTING"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot read the host's NAT table here: {result.stderr.strip()}")
    subnets = [n.subnet for n in sealed.plan.networks]
    masquerading = [line for line in result.stdout.splitlines()
                    if "MASQUERADE" in line and any(f"-s {subnet} " in line for subnet in subnets)]
    assert masquerading == []


def test_a_container_on_a_lab_network_without_the_seal_does_reach_the_listener(sealed, listeners, images):
    """The control: the listener is reachable from the bridge, so zero counts below mean the seal."""
    listener = listeners["data"]
    before = listener.accepted
    code, output = run_helper(sealed.client, sealed.name, f"{sealed.name}-data", _free_address(sealed.lab, "data"),
                              images["client"], ["python3", "-c", ATTEMPT, listener.address], timeout=30)
    assert code == 0 and "tcp-connected" in output, output
    assert _wait_for(lambda: listener.accepted == before + 1)


def test_no_node_reaches_the_engines_host_on_any_gateway(sealed, listeners):
    gateways = [listener.address for listener in listeners.values()]
    before = {name: (l.accepted, l.datagrams) for name, l in listeners.items()}
    for instance in sealed.lab.instances:
        code, output = sealed.exec(instance.name, "python3", "-c", ATTEMPT, *gateways)
        assert code == 0, (instance.name, output)
        assert "tcp-connected" not in output, (instance.name, output)
    time.sleep(0.5)   # a datagram in flight would arrive by now
    after = {name: (l.accepted, l.datagrams) for name, l in listeners.items()}
    assert after == before


def test_a_firewall_drops_forwarding_to_a_gateway_with_its_named_rule(sealed, listeners):
    """With the lb's own seal removed on purpose, fw still stops it: rule engine-gateway,
    whose counter rises, and the listener on the apps gateway sees nothing."""
    listener = listeners["apps"]
    lb = sealed.client.containers.get(f"{sealed.name}-lb")
    _in_namespace(sealed, "lb", "iptables -t raw -F")
    try:
        def counter() -> int:
            code, saved = sealed.exec("fw", "iptables-save", "-c", "-t", "filter")
            return sum(int(line[1:].split(":")[0]) for line in saved.splitlines()
                       if "--comment engine-gateway" in line)
        before, accepted = counter(), listener.accepted
        code, output = sealed.exec("lb", "python3", "-c", ATTEMPT, listener.address)
        assert "tcp-failed" in output, output
        assert counter() > before
        assert listener.accepted == accepted
    finally:
        install_routes(sealed.client, lb, "lb")   # puts the seal back, as `lab start` would
    assert "seal-engine-gateway" in _in_namespace(sealed, "lb", "iptables-save -t raw")


def test_the_engines_dns_does_not_answer_inside_nodes(sealed):
    fw_name = f"{sealed.name}-fw"    # a name the engine's DNS knows on the data network
    for node in ("db", "fw", "laptop"):
        code, output = sealed.exec(node, "dig", "+time=1", "+tries=1", "@127.0.0.11", fw_name, "A")
        assert code == 9 and "no servers could be reached" in output, (node, output)
    saved = _in_namespace(sealed, "db", "iptables-save -c")
    dropped = [line for line in saved.splitlines() if "--comment seal-engine-dns" in line]
    assert dropped and int(dropped[0][1:].split(":")[0]) >= 1, saved
    for instance in sealed.lab.instances:     # no namespace keeps the engine's redirection
        saved = _in_namespace(sealed, instance.name, "iptables-save -t nat")
        assert "DOCKER_OUTPUT" not in saved and "127.0.0.11" not in saved, (instance.name, saved)


def test_a_restarted_node_is_sealed_again(sealed):
    """The engine puts its DNS redirection back when a container starts; `lab start` seals again."""
    stop_node(sealed.client, sealed.name, "app-2")
    start_node(sealed.client, sealed.name, "app-2")
    saved = _in_namespace(sealed, "app-2", "iptables-save")
    assert "DOCKER_OUTPUT" not in saved and "seal-engine-gateway" in saved
    code, output = sealed.exec("app-2", "dig", "+time=1", "+tries=1", "@127.0.0.11", f"{sealed.name}-db", "A")
    assert code == 9, output


def test_the_lab_still_works_through_its_own_dns_and_web_path(sealed):
    lb = str(sealed.lab.instance("lb").address_on("dmz"))
    code, answer = sealed.exec("laptop", "dig", "+short", "www.shop.test", "A")
    assert code == 0 and answer.split() == [lb]
    code, status = sealed.exec("laptop", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "https://www.shop.test/api/products")
    assert (code, status) == (0, "200")


def _seal_check(lab) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["check", str(lab.file), "--seal", "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def on_a_probed_port(sealed):
    """A listener on the data gateway at a port the seal check tries (8080)."""
    listener = HostListener(str(sealed.lab.gateways["data"]), 8080)
    yield listener
    listener.close()


def test_the_seal_check_passes_on_the_default_lab(sealed, on_a_probed_port):
    code, report = _seal_check(sealed)
    assert on_a_probed_port.accepted == 0
    failed = [c for c in report["checks"] if not c["passed"]]
    assert code == 0 and report["passed"] and failed == []
    nodes = {c["node"] for c in report["checks"]}
    assert nodes == set(sealed.lab.instance_names())
    assert {c["name"] for c in report["checks"] if c["node"] == "resolver"} == {
        "seal-route", "seal-gateway", "seal-engine-dns", "seal-resolver-roots"}


def test_the_seal_check_fails_naming_a_node_given_a_route_to_the_gateway(sealed, on_a_probed_port):
    db = sealed.client.containers.get(f"{sealed.name}-db")
    gateway = str(sealed.lab.gateways["data"])
    _in_namespace(sealed, "db", f"iptables -t raw -F && ip route replace default via {gateway}")
    try:
        before = on_a_probed_port.accepted
        code, report = _seal_check(sealed)
        failed = {(c["node"], c["name"]): c["seen"] for c in report["checks"] if not c["passed"]}
        assert code == 1 and not report["passed"]
        assert {node for node, _ in failed} == {"db"}, failed
        assert "engine's gateway" in failed[("db", "seal-route")]
        # what the check says it saw, the host saw too: the listener took db's connection
        assert _wait_for(lambda: on_a_probed_port.accepted == before + 1)
        assert "answered" in failed[("db", "seal-gateway")]
    finally:
        _in_namespace(sealed, "db", "ip route del default || true")
        install_routes(sealed.client, db, "db")
    code, _report = _seal_check(sealed)
    assert code == 0


@pytest.fixture(scope="module")
def listeners6(sealed):
    """Listeners on the engine's IPv6 gateway address of every dual-stack lab network."""
    try:
        made = {name: HostListener(str(address)) for name, address in sealed.lab.gateways6.items()}
    except OSError as error:
        pytest.skip(f"this host cannot bind the lab's IPv6 gateway addresses: {error}")
    yield made
    for listener in made.values():
        listener.close()


def test_over_ipv6_an_unsealed_container_reaches_the_host_but_no_node_does(sealed, listeners6, images):
    """The control first (a helper without the seal connects to the host's IPv6 gateway
    address), then every node tries every IPv6 gateway: the host's listeners count nothing."""
    if not listeners6:
        pytest.skip("the lab has no IPv6 networks")
    control = listeners6["data"]
    accepted = control.accepted
    code, output = run_helper(sealed.client, sealed.name, f"{sealed.name}-data", _free_address(sealed.lab, "data"),
                              images["client"], ["python3", "-c", ATTEMPT, control.address], timeout=30)
    assert code == 0 and "tcp-connected" in output, output
    assert _wait_for(lambda: control.accepted == accepted + 1)
    gateways = [listener.address for listener in listeners6.values()]
    before = {name: (l.accepted, l.datagrams) for name, l in listeners6.items()}
    for instance in sealed.lab.instances:
        code, output = sealed.exec(instance.name, "python3", "-c", ATTEMPT, *gateways)
        assert code == 0 and "tcp-connected" not in output, (instance.name, output)
    time.sleep(0.5)
    assert {name: (l.accepted, l.datagrams) for name, l in listeners6.items()} == before


def test_over_ipv6_the_host_on_the_link_gets_nothing_but_neighbour_discovery(sealed):
    """The engine's host has a link-local address on every dual-stack bridge and answers
    pings to all nodes (ff02::1): from a node, no reply comes, and the seal's link rule
    counted the dropped requests."""
    code, output = sealed.exec("laptop", "ping", "-6", "-n", "-c", "2", "-W", "1", "ff02::1%eth0")
    assert " 0 received" in output, output
    saved = _in_namespace(sealed, "laptop", "ip6tables-save -c -t raw")
    dropped = [line for line in saved.splitlines() if "--comment seal-engine-link" in line and "ff00::/8" in line]
    assert dropped and int(dropped[0][1:].split(":")[0]) >= 2, saved
    code, output = sealed.exec("laptop", "ping", "-6", "-n", "-c", "1", "-W", "2",
                               str(sealed.lab.instance("home-router").addresses6["home"]))
    assert code == 0, output    # neighbour discovery still works: the lab's own IPv6 does
