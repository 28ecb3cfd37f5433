"""The internet topology for real, dual-stack: FRR routers in four ASes, BGP sessions in both
families, a reachability matrix over IPv4 and IPv6, the AS path in a trace (-4 and -6), a link
failure converging to the backup in both families, and the export rules that stop a route leak
in both. One lab for the whole module; every fact is read from FRR or the kernel."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv6Address

import pytest
from click.testing import CliRunner

from lab.backends.docker.backend import DockerBackend
from lab.checks.run import run_checks
from lab.cli import main
from lab.routing.watch import best_as_path, session_states, wait_for_as_path, wait_for_sessions
from lab.trace.journey import trace_url
from lab.trace.web import RequestOptions

from .conftest import running_lab, topology_text

# the shop's servers, ISP A's access network: as the shipped file has them, before any shift
SHOP_AS, ISP_A_AS, ISP_B_AS, TRANSIT_AS, IXP_AS = 64700, 64601, 64602, 64600, 64650
HOSTS = ["laptop", "resolver", "root-1", "tld-test", "ns-shop", "lb", "app", "db"]
FAMILIES = (4, 6)
ROUTERS = {"isp-a-edge", "isp-a-border", "isp-b-router", "transit-router", "site-router", "ixp-rs"}


@pytest.fixture(scope="module")
def internet(engine, images):
    with running_lab(engine, topology_text("internet", "routing")) as lab:
        seconds = wait_for_sessions(DockerBackend(engine), lab.lab)
        print(f"\nall BGP sessions established {seconds:.1f} s after `up` returned")
        yield lab


def address(lab, node: str, family: int = 4) -> IPv4Address | IPv6Address:
    instance = lab.lab.instance(node)
    return instance.first_address if family == 4 else instance.first_address6


def path_step(trace):
    return next(step for step in trace.steps if step.kind == "path")


def test_every_bgp_session_is_established_in_both_families(internet):
    states = session_states(DockerBackend(internet.client), internet.lab)
    assert set(states) == ROUTERS
    assert all(state == "Established" for peers in states.values() for state in peers.values()), states
    # isp-a-border: the shop (customer), the IXP's route server (peer, instead of ISP B itself),
    # Transit (provider), its iBGP partner; each once per family
    names = ["isp-a-edge (internal)", "ixp-rs (peer)", "site-router (customer)", "transit-router (provider)"]
    assert sorted(states["isp-a-border"]) == sorted(f"{n} IPv{f}" for n in names for f in FAMILIES)
    assert sorted(states["ixp-rs"]) == sorted(f"{n} (route-server client) IPv{f}" for n in ("isp-a-border", "isp-b-router")
                                              for f in FAMILIES)
    # FRR's own JSON, read here without lab's parser: the IPv6 sessions run between IPv6 addresses
    code, text = internet.exec("isp-a-border", "vtysh", "-c", "show bgp summary json")
    assert code == 0, text
    six = json.loads(text)["ipv6Unicast"]["peers"]
    site = str(internet.lab.instance("site-router").addresses6["link-shop-a"])
    assert six[site]["state"] == "Established" and six[site]["pfxRcd"] >= 1, six


def ping_matrix(internet, targets: list[str]) -> set[tuple[str, str, int]]:
    """(source, target, family) of every ping that got no answer, from every host to every
    target but itself, over both families (the target's own address of that family)."""
    triples = [(a, b, f) for a in HOSTS for b in targets for f in FAMILIES if a != b]

    def ping(triple):
        source, target, family = triple
        code, _ = internet.exec(source, "ping", f"-{family}", "-c", "1", "-W", "2", str(address(internet, target, family)))
        return triple, code

    with ThreadPoolExecutor(4) as pool:
        return {triple for triple, code in pool.map(ping, triples) if code != 0}


def test_every_host_reaches_every_other_it_should_over_both_families(internet):
    """Every host pings every other over IPv4 and IPv6, except that the laptop's home network is
    hidden behind home-router's NAT (NAT66 too) and announced by nobody: only hosts beside
    home-router reach it. The exchange's LAN is no AS's and announced by nobody either: only
    ISP B's tld-test reaches the route server (its router sits on the exchange and routes to it
    directly), in either family; from every other host nobody routes toward the exchange."""
    failed = ping_matrix(internet, [*HOSTS, "ixp-rs"])
    behind_nat = {(a, "laptop", f) for a in HOSTS if a not in ("laptop", "resolver") for f in FAMILIES}
    unannounced = {(a, "ixp-rs", f) for a in HOSTS if a != "tld-test" for f in FAMILIES}
    expected = behind_nat | unannounced
    assert failed == expected, (f"unexpected: no answer {sorted(failed - expected)}, "
                                f"answered {sorted(expected - failed)}")


def test_the_topology_checks_pass_route_checks_included(internet):
    results = run_checks(DockerBackend(internet.client), internet.lab)
    assert [r.name for r in results if not r.passed] == [], [r.as_dict() for r in results]
    assert sum(r.kind == "route" for r in results) == 5   # three IPv4, two IPv6


def test_lab_routes_shows_origins_and_as_paths(internet):
    result = CliRunner().invoke(main, ["routes", "--lab", internet.name, "isp-a-edge", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    assert table["read_from"] == "frr" and table["local_as"] == ISP_A_AS
    shop_net = str(internet.lab.spec.networks["shop-net"].subnet)
    used = [r for r in table["routes"] if r["prefix"] == shop_net and r["selected"]]
    assert [(r["origin"], r["as_path"]) for r in used] == [("bgp", [SHOP_AS])]
    assert {"connected", "ospf", "bgp"} <= {r["origin"] for r in table["routes"] if r["family"] == 4}
    # IPv6 beside it: the shop's IPv6 prefix by BGP with the same AS path, ISP A's own by OSPFv3
    shop_net6 = str(internet.lab.spec.networks["shop-net"].subnet6)
    used6 = [r for r in table["routes"] if r["prefix"] == shop_net6 and r["selected"]]
    assert [(r["origin"], r["as_path"], r["family"]) for r in used6] == [("bgp", [SHOP_AS], 6)]
    border6 = str(internet.lab.instance("isp-a-border").addresses6["isp-a-core"])
    assert used6[0]["via"] == border6          # next hop: the border's lab address, not a link-local
    assert {"connected", "ospfv3", "bgp"} <= {r["origin"] for r in table["routes"] if r["family"] == 6}
    assert {s["family"] for s in table["sessions"]} == {4, 6}


address_of = address   # the test below names its own `address`


def bgp_paths(internet, router: str, prefix: str) -> list[dict]:
    code, text = internet.exec(router, "vtysh", "-c", f"show bgp ipv4 unicast {prefix} json")
    assert code == 0, text
    return json.loads(text).get("paths", [])


def rs_vtysh(internet, line: str) -> None:
    code, text = internet.exec("ixp-rs", "vtysh", "-c", "configure terminal", "-c", "router bgp 64650",
                               "-c", line)
    assert code == 0, text


def test_the_route_server_passes_routes_on_transparently(internet):
    """ISP B hears ISP A's access network from the IXP's route server, but the path shows only
    ISP A and the next hop is ISP A's router on the IXP: the route server is in neither."""
    prefix = str(internet.lab.spec.networks["isp-a-access"].subnet)
    rs, isp_a_at_ixp = (str(internet.lab.instance(n).addresses["ixp"]) for n in ("ixp-rs", "isp-a-border"))
    best = next(p for p in bgp_paths(internet, "isp-b-router", prefix) if p.get("bestpath", {}).get("overall"))
    assert best["peer"]["peerId"] == rs                              # heard from the route server ...
    assert best["aspath"]["string"] == str(ISP_A_AS)                 # ... which is not in the path
    assert [hop["ip"] for hop in best["nexthops"]] == [isp_a_at_ixp]  # ... nor the next hop
    result = CliRunner().invoke(main, ["routes", "--lab", internet.name, "isp-b-router", "--json"])
    assert result.exit_code == 0, result.output
    used = [r for r in json.loads(result.output)["routes"] if r["prefix"] == prefix and r["selected"]]
    assert [(r["origin"], r["via"], r["as_path"]) for r in used] == [("bgp", isp_a_at_ixp, [ISP_A_AS])]
    # Proof the route server is what carried it: shut its session to ISP A and ISP B falls back
    # to buying it from Transit; open it again and the peer route is back.
    backend, address = DockerBackend(internet.client), address_of(internet, "resolver")   # on isp-a-access
    rs_vtysh(internet, f"neighbor {isp_a_at_ixp} shutdown")
    try:
        wait_for_as_path(backend, internet.lab, "isp-b-router", address,
                         lambda path: path == (ISP_B_AS, TRANSIT_AS, ISP_A_AS))
    finally:
        rs_vtysh(internet, f"no neighbor {isp_a_at_ixp} shutdown")
    seconds = wait_for_as_path(backend, internet.lab, "isp-b-router", address,
                               lambda path: path == (ISP_B_AS, ISP_A_AS))
    print(f"\nISP B back on the route server's path {seconds:.1f} s after its session to ISP A reopened")
    assert all(str(IXP_AS) not in p["aspath"]["string"].split() for p in bgp_paths(internet, "isp-a-border",
               str(internet.lab.spec.networks["isp-b-net"].subnet)))


def test_the_route_server_passes_ipv6_routes_on_transparently_too(internet):
    """The same over the IPv6 sessions: ISP B's best IPv6 path to ISP A's access network comes
    from the route server's IPv6 address, shows only ISP A, and its next hop is ISP A's router's
    IPv6 address on the IXP; the kernel routes the prefix through that address."""
    prefix = str(internet.lab.spec.networks["isp-a-access"].subnet6)
    rs, isp_a_at_ixp = (str(internet.lab.instance(n).addresses6["ixp"]) for n in ("ixp-rs", "isp-a-border"))
    code, text = internet.exec("isp-b-router", "vtysh", "-c", f"show bgp ipv6 unicast {prefix} json")
    assert code == 0, text
    best = next(p for p in json.loads(text)["paths"] if p.get("bestpath", {}).get("overall"))
    assert best["peer"]["peerId"] == rs and best["aspath"]["string"] == str(ISP_A_AS)
    assert [hop["ip"] for hop in best["nexthops"] if hop.get("used")] == [isp_a_at_ixp]
    code, text = internet.exec("isp-b-router", "ip", "-j", "-6", "route", "show", prefix)
    assert code == 0, text
    assert [route.get("gateway") for route in json.loads(text)] == [isp_a_at_ixp]   # the kernel agrees


def trace_in(internet, family: int):
    trace = trace_url(DockerBackend(internet.client), internet.lab, "https://www.shop.test/",
                      options=RequestOptions(family=family))
    assert trace.ok, trace.summary
    tcp = next(step for step in trace.steps if step.kind == "tcp")
    assert f"over IPv{family} (asked with -{family})" in tcp.detail, tcp.detail
    return trace, path_step(trace)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_trace_shows_the_as_path(internet, family):
    trace, step = trace_in(internet, family)
    assert "isp-a-border → site-router" in step.detail
    assert f"AS path {ISP_A_AS} {SHOP_AS}" in step.detail
    # read from the BGP table of the family the request used, toward the lb's address in it
    lb = address(internet, "lb", family)
    assert any(f"toward {lb} (vtysh: show bgp ipv{family} unicast)" in e for e in step.evidence), step.evidence


def shop_paths(internet, router: str, address: IPv4Address | IPv6Address) -> list[str]:
    code, text = internet.exec(router, "vtysh", "-c", f"show bgp ipv{address.version} unicast {address} json")
    assert code == 0, text
    return [p["aspath"]["string"] for p in json.loads(text).get("paths", [])]


def crosses_the_shop(paths: list[str]) -> bool:
    return any(str(SHOP_AS) in path.split() for path in paths)


def site_vtysh(internet, *lines: str) -> None:
    code, text = internet.exec("site-router", "vtysh", "-c", "configure terminal", *[
        arg for line in lines for arg in ("-c", line)])
    assert code == 0, text
    for family in FAMILIES:
        code, text = internet.exec("site-router", "vtysh", "-c", f"clear bgp ipv{family} unicast * soft out")
        assert code == 0, text


def test_customers_routes_never_leak_between_providers_in_either_family(internet):
    backend = DockerBackend(internet.client)
    isp_a_access = [address(internet, "resolver", f) for f in FAMILIES]   # on ISP A's access network
    for target in isp_a_access:
        # the shop has ISP A's route (so it could pass it on) ...
        assert best_as_path(backend, internet.lab, "site-router", target) == (SHOP_AS, ISP_A_AS)
        # ... but neither ISP B nor Transit ever hears it from the shop: no path of theirs crosses it
        for router in ("isp-b-router", "transit-router"):
            paths = shop_paths(internet, router, target)
            assert paths and not crosses_the_shop(paths), (router, target, paths)
    # Proof that the export rule is what stops it, in both families (they share the map): drop
    # it on the shop's session to ISP B, and ISP B hears ISP A's network from the shop and
    # prefers it even prepended (a customer's route, local preference 200, beats the peer's
    # 150); put the rule back and the leak is gone again.
    rule = "route-map TO-ISP_B_ROUTER deny 10"
    leaked = (ISP_B_AS, SHOP_AS, SHOP_AS, SHOP_AS, ISP_A_AS)   # prepended
    site_vtysh(internet, f"no {rule}")
    try:
        for target in isp_a_access:
            wait_for_as_path(backend, internet.lab, "isp-b-router", target, lambda path: path == leaked)
    finally:
        site_vtysh(internet, rule, " match community LAB-FROM-PEER-OR-PROVIDER")
    for target in isp_a_access:
        wait_for_as_path(backend, internet.lab, "isp-b-router", target, lambda path: path == (ISP_B_AS, ISP_A_AS))
        assert not crosses_the_shop(shop_paths(internet, "isp-b-router", target))


def moved_to_isp_b(report: dict, prefix: str) -> list[dict]:
    return [c for c in report["changes"] if c["prefix"] == prefix and f"{ISP_B_AS} {SHOP_AS}" in (c["now"] or "")]


def test_a_failed_link_converges_to_the_backup_in_both_families_and_the_trace_follows(internet):
    backend = DockerBackend(internet.client)
    lbs = [address(internet, "lb", f) for f in FAMILIES]
    for lb in lbs:
        assert best_as_path(backend, internet.lab, "isp-a-edge", lb) == (ISP_A_AS, SHOP_AS)
    runner = CliRunner()
    down = runner.invoke(main, ["link", "--lab", internet.name, "down", "site-router", "link-shop-a",
                                "--watch", "isp-a-edge", "--json"])
    try:
        assert down.exit_code == 0, down.output
        report = json.loads(down.output)
        assert report["kernel_state"] == "down"
        shop_net = internet.lab.spec.networks["shop-net"]
        # the watch saw isp-a-edge's route to the shop move to ISP B in each family (or it had by
        # its first poll)
        for family, prefix in ((4, shop_net.subnet), (6, shop_net.subnet6)):
            moved = moved_to_isp_b(report, str(prefix))
            assert moved, (family, report["changes"])
            print(f"\nIPv{family}: converged to the backup (via ISP B) {moved[0]['seconds']:.1f} s after the "
                  "link was seen down")
        for family, lb in zip(FAMILIES, lbs):
            wait_for_as_path(backend, internet.lab, "isp-a-edge", lb, lambda path: bool(path) and ISP_B_AS in path)
            assert best_as_path(backend, internet.lab, "isp-a-edge", lb) == (ISP_A_AS, ISP_B_AS, SHOP_AS, SHOP_AS, SHOP_AS)
            _, step = trace_in(internet, family)
            assert "isp-a-border → isp-b-router → site-router" in step.detail, (family, step.detail)
            assert f"AS path {ISP_A_AS} {ISP_B_AS} {SHOP_AS}" in step.detail
    finally:
        up = runner.invoke(main, ["link", "--lab", internet.name, "up", "site-router", "link-shop-a"])
        assert up.exit_code == 0, up.output
    for family, lb in zip(FAMILIES, lbs):
        seconds = wait_for_as_path(backend, internet.lab, "isp-a-edge", lb, lambda path: path == (ISP_A_AS, SHOP_AS))
        print(f"IPv{family}: back on the primary {seconds:.1f} s after the link came up (or the previous family)")


def test_link_on_a_network_the_node_is_not_on_is_refused(internet):
    result = CliRunner().invoke(main, ["link", "--lab", internet.name, "down", "laptop", "ixp"])
    assert result.exit_code == 2
    assert "node 'laptop' is not on network 'ixp' (its networks: home)" in result.output
