"""The reference mini-internet on a real engine: addresses, routes and resolvers as planned."""

from __future__ import annotations

import pytest

from .conftest import running_lab, topology_text


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", "it-shop")) as lab:
        yield lab


def test_every_node_runs_at_its_planned_addresses(shop):
    for instance in shop.lab.instances:
        code, output = shop.exec(instance.name, "ip", "-4", "-o", "addr", "show", "scope", "global")
        assert code == 0
        for address in instance.addresses.values():
            assert f" {address}/" in output, (instance.name, output)


def test_the_path_crosses_only_lab_routers(shop):
    lb = str(shop.lab.instance("lb").address_on("dmz"))
    code, output = shop.exec("laptop", "traceroute", "-n", "-I", "-w", "1", "-q", "1", lb)
    assert code == 0, output
    hops = [line.split()[1] for line in output.splitlines()[1:]]
    expected = [str(shop.lab.instance("home-router").address_on("home")),
                str(shop.lab.instance("isp-router").address_on("isp")),
                str(shop.lab.instance("fw").address_on("backbone")), lb]
    assert hops == expected


def test_no_node_routes_toward_the_real_internet(shop):
    gateways = {str(a) for a in shop.lab.gateways.values()}
    for instance in shop.lab.instances:
        code, routes = shop.exec(instance.name, "ip", "route", "show")
        assert not any(f"via {gateway}" in routes for gateway in gateways), (instance.name, routes)
    # `ip route get` asks the kernel without sending anything.
    for name in ("isp-router", "root-1", "fw"):
        code, output = shop.exec(name, "ip", "route", "get", "192.0.2.1")
        assert code != 0 and "unreachable" in output.lower(), (name, output)


def test_names_resolve_only_through_the_labs_resolver(shop):
    resolver = str(shop.lab.instance("resolver").address_on("isp"))
    for instance in shop.lab.instances:
        code, text = shop.exec(instance.name, "cat", "/etc/resolv.conf")
        assert code == 0, (instance.name, text)
        servers = [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")]
        own_cache = getattr(shop.lab.spec.nodes[instance.node], "os_cache", None) is not None
        local = instance.kind == "dns-resolver" or own_cache
        assert servers == (["127.0.0.1"] if local else [resolver]), instance.name
        if own_cache:   # its DNS cache (dnsmasq) forwards only to the lab's resolver
            code, conf = shop.exec(instance.name, "cat", "/lab/etc/dnsmasq.conf")
            assert [l for l in conf.splitlines() if l.startswith("server=")] == [f"server={resolver}"]


def test_only_routers_and_firewalls_may_change_their_routes(shop):
    home_router = str(shop.lab.instance("home-router").address_on("home"))
    fw = str(shop.lab.instance("fw").address_on("backbone"))
    code, _ = shop.exec("laptop", "ip", "route", "add", "198.51.100.0/24", "via", home_router)
    assert code != 0
    code, _ = shop.exec("isp-router", "ip", "route", "replace", "198.51.100.0/24", "via", fw)
    assert code == 0


def test_each_node_holds_its_planned_files_and_no_secret_rides_in_an_environment(shop):
    """Files go by the creation's environment (lab_files.py) except secrets, which go by
    archive: read back from the node itself, from `docker inspect`, and from the host's
    /proc of every process the node runs."""
    from lab.backends.docker.lab_files import FILES_ENV, files_from_environment
    from lab.backends.docker.ready_report import ready_files
    from lab.plan.web import SECRET_FILES

    secrets_seen = 0
    for container_plan in shop.plan.containers:
        container = shop.client.containers.get(container_plan.docker_name)
        planned = {**container_plan.all_files(), **ready_files(container_plan)}
        given = files_from_environment(container)
        assert given == {p: c for p, c in planned.items() if p not in SECRET_FILES}, container_plan.name
        environment = "\n".join(container.attrs["Config"]["Env"])
        for path in SECRET_FILES & planned.keys():
            secrets_seen += 1
            assert planned[path].strip() not in environment, (container_plan.name, path)
        for path, content in planned.items():   # every file, secret or not, is in the node's /lab
            code, text = shop.exec(container_plan.name, "cat", f"/lab/{path}")
            assert (code, text) == (0, content), (container_plan.name, path)
        tini = str(container.attrs["State"]["Pid"])
        for process in container.top(ps_args="-o pid")["Processes"]:
            if process[0] != tini:   # the engine's init keeps the creation's environment
                try:
                    with open(f"/proc/{process[0]}/environ", "rb") as handle:
                        assert f"{FILES_ENV}=".encode() not in handle.read(), (container_plan.name, process)
                except (FileNotFoundError, ProcessLookupError):
                    pass   # it ended since `top` listed it
    assert secrets_seen >= 5   # the lb's key; the database's and each app's password


def test_a_restarted_node_keeps_its_files_as_left_and_gets_its_routes_again(shop):
    """The files in a node's environment are unpacked at its first start only (a live file
    changed in place since must stay as it is); `lab stop`/`lab start` then routes it again
    from what the runtime reads in its environment (the node unpacks nothing this time)."""
    from lab.plan.model import LIVE_HASH_FILE

    code, original = shop.exec("laptop", "cat", f"/lab/{LIVE_HASH_FILE}")
    assert code == 0
    assert shop.exec("laptop", "sh", "-c", f"echo changed-in-place > /lab/{LIVE_HASH_FILE}")[0] == 0
    try:
        shop.backend.stop(shop.name, "laptop")
        shop.backend.start(shop.name, "laptop")
        assert shop.exec("laptop", "cat", f"/lab/{LIVE_HASH_FILE}") == (0, "changed-in-place\n")
        planned = next(c for c in shop.plan.containers if c.name == "laptop").files["routes"]
        code, table = shop.exec("laptop", "ip", "-4", "route", "show")
        for line in filter(None, planned.splitlines()):
            if ":" not in line:
                words = line.split()
                assert f"{words[0]} via {words[2]} " in table, (line, table)
    finally:
        shop.exec("laptop", "sh", "-c", f"printf %s '{original}' > /lab/{LIVE_HASH_FILE}")
