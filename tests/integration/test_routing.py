"""The internet topology for real: FRR routers in four ASes, BGP sessions, a reachability matrix,
the AS path in a trace, a link failure converging to the backup, and the export rules that stop
a route leak. One lab for the whole module; every fact is read from FRR or the kernel."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address

import pytest
from click.testing import CliRunner

from lab.backends.docker.backend import DockerBackend
from lab.checks.run import run_checks
from lab.cli import main
from lab.routing.watch import best_as_path, session_states, wait_for_as_path, wait_for_sessions
from lab.trace.journey import trace_url

from .conftest import running_lab, topology_text

# the shop's servers, ISP A's access network: as the shipped file has them, before any shift
SHOP_AS, ISP_A_AS, ISP_B_AS, TRANSIT_AS, IXP_AS = 64700, 64601, 64602, 64600, 64650
HOSTS = ["laptop", "resolver", "root-1", "tld-test", "ns-shop", "lb", "app", "db"]


@pytest.fixture(scope="module")
def internet(engine, images):
    with running_lab(engine, topology_text("internet", "routing")) as lab:
        seconds = wait_for_sessions(DockerBackend(engine), lab.lab)
        print(f"\nall BGP sessions established {seconds:.1f} s after `up` returned")
        yield lab


def address(lab, node: str) -> IPv4Address:
    return lab.lab.instance(node).first_address


def path_step(trace):
    return next(step for step in trace.steps if step.kind == "path")


def test_every_bgp_session_is_established(internet):
    states = session_states(DockerBackend(internet.client), internet.lab)
    assert set(states) == {"isp-a-edge", "isp-a-border", "isp-b-router", "transit-router", "site-router", "ixp-rs"}
    assert all(state == "Established" for peers in states.values() for state in peers.values()), states
    # isp-a-border: the shop (customer), the IXP's route server (peer, instead of ISP B itself),
    # Transit (provider), its iBGP partner
    assert sorted(states["isp-a-border"]) == ["isp-a-edge (internal)", "ixp-rs (peer)",
                                              "site-router (customer)", "transit-router (provider)"]
    assert sorted(states["ixp-rs"]) == ["isp-a-border (route-server client)", "isp-b-router (route-server client)"]


def test_every_host_reaches_every_other_it_should(internet):
    """Every host pings every other, except that the laptop's home network is hidden behind
    home-router's NAT and announced by nobody: only hosts beside home-router reach it."""
    pairs = [(a, b) for a in HOSTS for b in HOSTS if a != b]
    behind_nat = {(a, "laptop") for a in HOSTS if a not in ("laptop", "resolver")}

    def ping(pair):
        code, _ = internet.exec(pair[0], "ping", "-c", "1", "-W", "3", str(address(internet, pair[1])))
        return pair, code

    with ThreadPoolExecutor(4) as pool:
        failed = {pair for pair, code in pool.map(ping, pairs) if code != 0}
    assert failed == behind_nat, (f"unexpected: no answer {sorted(failed - behind_nat)}, "
                                  f"answered through NAT {sorted(behind_nat - failed)}")


def test_the_topology_checks_pass_route_checks_included(internet):
    results = run_checks(DockerBackend(internet.client), internet.lab)
    assert [r.name for r in results if not r.passed] == [], [r.as_dict() for r in results]
    assert sum(r.kind == "route" for r in results) == 3


def test_lab_routes_shows_origins_and_as_paths(internet):
    result = CliRunner().invoke(main, ["routes", "--lab", internet.name, "isp-a-edge", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    assert table["read_from"] == "frr" and table["local_as"] == ISP_A_AS
    shop_net = str(internet.lab.spec.networks["shop-net"].subnet)
    used = [r for r in table["routes"] if r["prefix"] == shop_net and r["selected"]]
    assert [(r["origin"], r["as_path"]) for r in used] == [("bgp", [SHOP_AS])]
    assert {"connected", "ospf", "bgp"} <= {r["origin"] for r in table["routes"]}


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


def test_the_trace_shows_the_as_path(internet):
    trace = trace_url(DockerBackend(internet.client), internet.lab, "https://www.shop.test/")
    assert trace.ok, trace.summary
    step = path_step(trace)
    assert "isp-a-border → site-router" in step.detail
    assert f"AS path {ISP_A_AS} {SHOP_AS}" in step.detail


def shop_paths(internet, router: str, address: IPv4Address) -> list[str]:
    code, text = internet.exec(router, "vtysh", "-c", f"show bgp ipv4 unicast {address} json")
    assert code == 0, text
    return [p["aspath"]["string"] for p in json.loads(text).get("paths", [])]


def crosses_the_shop(paths: list[str]) -> bool:
    return any(str(SHOP_AS) in path.split() for path in paths)


def site_vtysh(internet, *lines: str) -> None:
    code, text = internet.exec("site-router", "vtysh", "-c", "configure terminal", *[
        arg for line in lines for arg in ("-c", line)])
    assert code == 0, text
    code, text = internet.exec("site-router", "vtysh", "-c", "clear bgp ipv4 unicast * soft out")
    assert code == 0, text


def test_customers_routes_never_leak_between_providers(internet):
    backend = DockerBackend(internet.client)
    isp_a_access = address(internet, "resolver")      # on ISP A's access network
    # the shop has ISP A's route (so it could pass it on) ...
    assert best_as_path(backend, internet.lab, "site-router", isp_a_access) == (SHOP_AS, ISP_A_AS)
    # ... but neither ISP B nor Transit ever hears it from the shop: no path of theirs crosses it
    for router in ("isp-b-router", "transit-router"):
        paths = shop_paths(internet, router, isp_a_access)
        assert paths and not crosses_the_shop(paths), (router, paths)
    # Proof that the export rule is what stops it: drop it on the shop's session to ISP B, and
    # ISP B hears ISP A's network from the shop and prefers it even prepended (a customer's
    # route, local preference 200, beats the peer's 150); put
    # the rule back and the leak is gone again.
    rule = "route-map TO-ISP_B_ROUTER deny 10"
    site_vtysh(internet, f"no {rule}")
    try:
        wait_for_as_path(backend, internet.lab, "isp-b-router", isp_a_access,
                         lambda path: path == (ISP_B_AS, SHOP_AS, SHOP_AS, SHOP_AS, ISP_A_AS))   # prepended
    finally:
        site_vtysh(internet, rule, " match community LAB-FROM-PEER-OR-PROVIDER")
    wait_for_as_path(backend, internet.lab, "isp-b-router", isp_a_access, lambda path: path == (ISP_B_AS, ISP_A_AS))
    assert not crosses_the_shop(shop_paths(internet, "isp-b-router", isp_a_access))


def test_a_failed_link_converges_to_the_backup_and_the_trace_follows(internet):
    backend = DockerBackend(internet.client)
    lb = address(internet, "lb")
    assert best_as_path(backend, internet.lab, "isp-a-edge", lb) == (ISP_A_AS, SHOP_AS)
    runner = CliRunner()
    down = runner.invoke(main, ["link", "--lab", internet.name, "down", "site-router", "link-shop-a",
                                "--watch", "isp-a-edge", "--json"])
    try:
        assert down.exit_code == 0, down.output
        report = json.loads(down.output)
        assert report["kernel_state"] == "down"
        shop_net = str(internet.lab.spec.networks["shop-net"].subnet)
        # the watch saw isp-a-edge's route to the shop move to ISP B (or it had by its first poll)
        moved = [c for c in report["changes"] if c["prefix"] == shop_net and f"{ISP_B_AS} {SHOP_AS}" in (c["now"] or "")]
        assert moved, report["changes"]
        print(f"\nconverged to the backup (via ISP B) {moved[0]['seconds']:.1f} s after the link was seen down; "
              f"isp-a-edge's changes: {report['changes']}")
        wait_for_as_path(backend, internet.lab, "isp-a-edge", lb, lambda path: bool(path) and ISP_B_AS in path)
        assert best_as_path(backend, internet.lab, "isp-a-edge", lb) == (ISP_A_AS, ISP_B_AS, SHOP_AS, SHOP_AS, SHOP_AS)
        trace = trace_url(backend, internet.lab, "https://www.shop.test/")
        assert trace.ok, trace.summary
        step = path_step(trace)
        assert "isp-a-border → isp-b-router → site-router" in step.detail
        assert f"AS path {ISP_A_AS} {ISP_B_AS} {SHOP_AS}" in step.detail
    finally:
        up = runner.invoke(main, ["link", "--lab", internet.name, "up", "site-router", "link-shop-a"])
        assert up.exit_code == 0, up.output
    seconds = wait_for_as_path(backend, internet.lab, "isp-a-edge", lb, lambda path: path == (ISP_A_AS, SHOP_AS))
    print(f"back on the primary {seconds:.1f} s after the link came up")


def test_link_on_a_network_the_node_is_not_on_is_refused(internet):
    result = CliRunner().invoke(main, ["link", "--lab", internet.name, "down", "laptop", "ixp"])
    assert result.exit_code == 2
    assert "node 'laptop' is not on network 'ixp' (its networks: home)" in result.output
