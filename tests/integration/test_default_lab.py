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
