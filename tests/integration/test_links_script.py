"""The links DaemonSet's script (lab/export/links_script.py), run for real on this machine's kernel.

No cluster runs here, so two cluster nodes are two network namespaces joined by
a veth pair (the underlay, 10.220.254.0/24), each running the script as the
DaemonSet would (its environment, its peers' name resolved by getent: here
through the namespace's own /etc/netns/NAME/hosts instead of the cluster DNS).
Each lab network's "pods" are further namespaces on a veth into that node's
bridge, as the bridge CNI plugin would attach them (MTU from the NAD). Every
claim is checked with `ip`, `bridge` and ping, never with the script's words.
Traffic stays inside the namespaces this test makes (all named kube-*), which
it removes afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.export.kubernetes_links import LINK_MTU, vxlan_ids
from lab.export.links_script import LINKS_SCRIPT

PREFIX = f"kube-{os.getpid() % 100000}"
NODES = {"a": "10.220.254.1", "b": "10.220.254.2"}
PEERS_NAME = "lab-links.kube-test.svc"
IDS = vxlan_ids("kube-test", ["lan", "wan"])
BRIDGES = {"lan": "labkubetest01", "wan": "labkubetest02"}


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def in_ns(ns: str, *command: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True, text=True, check=check,
                          timeout=30)


def ns(name: str) -> str:
    return f"{PREFIX}-{name}"


def write_hosts(node: str, addresses: list[str]) -> None:
    """What the cluster DNS would answer for the headless Service: every node's address."""
    folder = Path("/etc/netns") / ns(node)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{a} {PEERS_NAME}\n" for a in addresses))


def add_pod(node: str, network: str, pod: str, address: str) -> None:
    """A pod on a lab network, attached as the bridge CNI plugin does (a veth into the bridge)."""
    ip("netns", "add", ns(pod))
    ip("-n", ns(node), "link", "add", f"v{pod}", "type", "veth", "peer", "name", "eth0", "netns", ns(pod))
    ip("-n", ns(node), "link", "set", f"v{pod}", "mtu", str(LINK_MTU), "master", BRIDGES[network], "up")
    ip("-n", ns(pod), "link", "set", "eth0", "mtu", str(LINK_MTU), "up")
    ip("-n", ns(pod), "addr", "add", f"{address}/24", "dev", "eth0")


def start_script(node: str, mode: str = "up", links: dict[str, int] | None = None) -> subprocess.Popen:
    links = IDS if links is None else links
    env = {"PATH": os.environ["PATH"], "LAB_LINKS_MODE": mode, "NODE_IP": NODES[node],
           "LAB_PEERS_NAME": PEERS_NAME, "LAB_LINKS_MTU": str(LINK_MTU), "LAB_LINKS_EVERY": "1",
           "LAB_LINKS_READY": f"/tmp/{ns(node)}-{mode}-ready",
           "LAB_LINKS": "".join(f"{vni} {BRIDGES[net]}\n" for net, vni in links.items())}
    Path(env["LAB_LINKS_READY"]).unlink(missing_ok=True)
    return subprocess.Popen(["ip", "netns", "exec", ns(node), "sh", "-c", LINKS_SCRIPT], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(process: subprocess.Popen, ready: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise AssertionError(f"the script ended ({process.returncode}): {process.stderr.read()}")
        assert time.monotonic() < deadline, "the script did not report ready"
        time.sleep(0.1)


def fdb_peers(node: str, vni: int) -> set[str]:
    shown = in_ns(ns(node), "bridge", "fdb", "show", "dev", f"vxlan{vni}").stdout.split("\n")
    return {line.split()[2] for line in shown if line.startswith("00:00:00:00:00:00 dst ")}


def device(node: str, name: str) -> str:
    """`ip -d link` of a device in a node, "" when it is not there."""
    return in_ns(ns(node), "ip", "-d", "-o", "link", "show", "dev", name).stdout


# A UDP echo (no ping on this machine): the server answers each datagram with its own bytes.
ECHO_SERVER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7007))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"""
# The client sets Don't Fragment: a datagram too big for the path fails instead of being cut up.
ECHO_CLIENT = """
import socket, sys
address, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)      # IP_MTU_DISCOVER = IP_PMTUDISC_DO
s.settimeout(1)
for _ in range(3):                          # the first may wait on ARP
    try:
        s.sendto(b"x" * size, (address, 7007))
        if s.recvfrom(65535)[0] == b"x" * size:
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)
"""


def echo_server(pod: str, processes: list) -> None:
    server = subprocess.Popen(["ip", "netns", "exec", ns(pod), sys.executable, "-c", ECHO_SERVER],
                              stdout=subprocess.PIPE, text=True)
    processes.append(server)
    assert server.stdout.readline().strip() == "listening"


def echoes(pod: str, address: str, size: int = 64) -> bool:
    """A datagram of size bytes (UDP payload) from pod to address comes back whole."""
    return in_ns(ns(pod), sys.executable, "-c", ECHO_CLIENT, address, str(size)).returncode == 0


@pytest.fixture
def nodes():
    """Two cluster nodes joined by an underlay; whatever the test made is removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2, which this machine does not give")
    made: list[str] = []
    processes: list[subprocess.Popen] = []
    try:
        for node in NODES:
            ip("netns", "add", ns(node))
            made.append(ns(node))
            ip("-n", ns(node), "link", "set", "lo", "up")
        ip("-n", ns("a"), "link", "add", "under", "type", "veth", "peer", "name", "under", "netns", ns("b"))
        for node, address in NODES.items():
            ip("-n", ns(node), "addr", "add", f"{address}/24", "dev", "under")
            ip("-n", ns(node), "link", "set", "under", "up")
            write_hosts(node, list(NODES.values()))
        probe = ip("-n", ns("a"), "link", "add", "vxprobe", "type", "vxlan", "id", "7", "dstport", "4789", check=False)
        if probe.returncode != 0:
            pytest.skip(f"this kernel cannot make VXLAN devices ({probe.stderr.strip()})")
        ip("-n", ns("a"), "link", "del", "vxprobe")
        yield made, processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()           # the script's trap also ends its own sleep
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n"):
            if name.startswith(f"{PREFIX}-"):
                ip("netns", "del", name.split()[0], check=False)
        for node in NODES:
            shutil.rmtree(Path("/etc/netns") / ns(node), ignore_errors=True)
        for ready in Path("/tmp").glob(f"{PREFIX}-*-ready*"):
            ready.unlink()


def bring_up(processes: list) -> dict[str, subprocess.Popen]:
    running = {}
    for node in NODES:
        running[node] = start_script(node)
        processes.append(running[node])
    for node, process in running.items():
        wait_ready(process, Path(f"/tmp/{ns(node)}-up-ready"))
    return running


def test_pods_on_two_nodes_share_each_network_and_only_their_own(nodes):
    _, processes = nodes
    bring_up(processes)
    for node, address in NODES.items():
        other = next(a for n, a in NODES.items() if n != node)
        for network, vni in IDS.items():
            shown = device(node, f"vxlan{vni}")
            assert f"vxlan id {vni} " in shown and "dstport 4789" in shown and f"local {address} " in shown
            assert f"master {BRIDGES[network]} " in shown and f"mtu {LINK_MTU} " in shown
            assert fdb_peers(node, vni) == {other}          # the other node only, never itself
    add_pod("a", "lan", "pa", "10.220.10.1")
    add_pod("b", "lan", "pb", "10.220.10.2")
    add_pod("b", "wan", "pw", "10.220.10.3")     # same subnet, other network: must stay apart
    for pod in ("pb", "pw"):
        echo_server(pod, processes)
    assert echoes("pa", "10.220.10.2")
    assert echoes("pa", "10.220.10.2", size=LINK_MTU - 28)    # a full frame (IP + UDP headers) fits the tunnel
    assert not echoes("pa", "10.220.10.2", size=LINK_MTU - 27)   # and the pods' MTU is what bounds it
    assert not echoes("pa", "10.220.10.3")


def test_peers_follow_the_name_and_term_leaves_no_device(nodes):
    _, processes = nodes
    running = bring_up(processes)
    vni = IDS["lan"]
    write_hosts("a", [NODES["a"]])                # node b left the cluster
    deadline = time.monotonic() + 10
    while fdb_peers("a", vni) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fdb_peers("a", vni) == set()
    write_hosts("a", list(NODES.values()))        # and came back
    while not fdb_peers("a", vni) and time.monotonic() < deadline + 10:
        time.sleep(0.2)
    assert fdb_peers("a", vni) == {NODES["b"]}
    write_hosts("a", [])                          # the name does not resolve for a while (DNS away)
    time.sleep(3)                                 # three passes of the script
    assert fdb_peers("a", vni) == {NODES["b"]}    # no node left: the peers stay
    running["a"].send_signal(signal.SIGTERM)      # the DaemonSet deleted: its pod ends
    out, _ = running["a"].communicate(timeout=10)
    assert running["a"].returncode == 0
    assert f"{PEERS_NAME} does not resolve now: peers kept" in out
    for network, vni in IDS.items():
        assert device("a", f"vxlan{vni}") == "" and device("a", BRIDGES[network]) == ""
    assert device("b", f"vxlan{IDS['lan']}") != ""    # the other node's are its own business


def test_a_node_is_not_ready_before_the_name_lists_it(nodes):
    """The Service's answer may lag behind the pods: a node waits until it finds itself in it."""
    _, processes = nodes
    write_hosts("a", [NODES["b"]])
    early = start_script("a")
    processes.append(early)
    ready = Path(f"/tmp/{ns('a')}-up-ready")
    time.sleep(2.5)
    assert not ready.exists() and early.poll() is None
    write_hosts("a", list(NODES.values()))
    wait_ready(early, ready)
    assert fdb_peers("a", IDS["lan"]) == {NODES["b"]}


def test_the_cleanup_mode_removes_the_devices_and_says_so(nodes):
    _, processes = nodes
    running = bring_up(processes)
    running["b"].kill()                           # ended without its TERM trap: the devices stay
    running["b"].wait()
    assert device("b", f"vxlan{IDS['wan']}") != ""
    cleanup = start_script("b", mode="down")
    processes.append(cleanup)
    wait_ready(cleanup, Path(f"/tmp/{ns('b')}-down-ready"))
    for network, vni in IDS.items():
        assert device("b", f"vxlan{vni}") == "" and device("b", BRIDGES[network]) == ""
    cleanup.send_signal(signal.SIGTERM)
    out, _ = cleanup.communicate(timeout=10)
    assert "down: no device of the lab left on this node" in out and cleanup.returncode == 0


def test_a_vxlan_id_another_lab_holds_is_refused(nodes):
    """Another lab's network already has this VNI's device on the node, on its own bridge."""
    _, _ = nodes
    vni = IDS["lan"]
    ip("-n", ns("a"), "link", "add", "otherbr", "type", "bridge")
    ip("-n", ns("a"), "link", "add", f"vxlan{vni}", "type", "vxlan", "id", str(vni), "dstport", "4789")
    ip("-n", ns("a"), "link", "set", f"vxlan{vni}", "master", "otherbr")
    refused = start_script("a")
    _, err = refused.communicate(timeout=20)
    assert refused.returncode == 1
    assert f"vxlan{vni} is joined to otherbr, not {BRIDGES['lan']}: VXLAN id {vni} is another lab's" in err
    assert not Path(f"/tmp/{ns('a')}-up-ready").exists()
    assert "master otherbr " in device("a", f"vxlan{vni}")        # the other lab's device is untouched


def test_the_daemonset_as_rendered_runs_in_its_image(engine, images, tmp_path):
    """One cluster node, as a container of the image the DaemonSet names, with the DaemonSet's own
    command and environment (its field references filled in as the kubelet would): the devices of
    every network appear, and the cleanup mode removes them. Proves the image has what the script
    needs, in the shell it has."""
    from docker.types import IPAMConfig, IPAMPool

    from lab.export.kubernetes import kubernetes_documents
    from lab.plan import LabState, make_plan
    from lab.topology import load_topology
    from tests.integration.conftest import ROOT, SHIFT

    plan = make_plan(load_topology(ROOT / "topology" / "minimal.yaml"), LabState())
    daemonset = next(d for d in kubernetes_documents(plan, "x", links="vxlan") if d["kind"] == "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]["containers"][0]
    table = json.loads(daemonset["metadata"]["annotations"]["lab.links"])
    address = f"10.{220 + SHIFT}.253.2"
    env = {e["name"]: e["value"] for e in spec["env"] if "value" in e}
    env.update(LAB_LINKS_MODE="up", NODE_IP=address)
    underlay = engine.networks.create(f"kube-underlay{SHIFT}", driver="bridge",
                                      ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=f"10.{220 + SHIFT}.253.0/24")]))
    node = None
    try:
        node = engine.containers.create(spec["image"], entrypoint=spec["command"][:2], command=[spec["command"][2]],
                                        environment=env, cap_add=["NET_ADMIN"], name=f"kube-node{SHIFT}",
                                        extra_hosts={env["LAB_PEERS_NAME"]: address}, network=underlay.name,
                                        networking_config=engine.api.create_networking_config(
                                            {underlay.name: engine.api.create_endpoint_config(ipv4_address=address)}))
        node.start()
        wait_in(node, ["cat", env["LAB_LINKS_READY"]], "up")
        shown = node.exec_run(["ip", "-d", "-o", "link", "show"]).output.decode()
        for entry in table.values():
            device_line = next(line for line in shown.splitlines() if f" vxlan{entry['vni']}: " in line)
            assert f"vxlan id {entry['vni']} " in device_line and f"master {entry['bridge']} " in device_line
        node.exec_run(["sh", "-c", spec["command"][2]], environment={**env, "LAB_LINKS_MODE": "down",
                                                                    "LAB_LINKS_READY": "/tmp/down"}, detach=True)
        wait_in(node, ["cat", "/tmp/down"], "down")
        shown = node.exec_run(["ip", "-o", "link", "show"]).output.decode()
        assert not any(entry["bridge"] in shown or f"vxlan{entry['vni']}" in shown for entry in table.values())
    finally:
        if node is not None:
            node.remove(force=True)
        underlay.remove()


def wait_in(container, command: list[str], expected: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while container.exec_run(command).output.decode().strip() != expected:
        container.reload()
        assert container.status == "running", container.logs().decode()
        assert time.monotonic() < deadline, container.logs().decode()
        time.sleep(0.3)
