"""DNS plans checked directly: zones, delegations, glue, reverse zones, resolver config."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, ip_network

from lab.plan import make_plan
from lab.plan.dns import render_unbound_conf, served_networks
from lab.plan.zones import SERIAL_TOKEN, all_zones
from lab.topology import DEFAULT_TOPOLOGY, load_text, load_topology


def default():
    return load_topology(DEFAULT_TOPOLOGY)


def records(zone, rtype=None):
    return {(r.owner, r.rtype, r.data) for r in zone.records if rtype in (None, r.rtype)}


def test_the_root_delegates_each_top_zone_with_ns_and_glue():
    lab = default()
    root = all_zones(lab)["."]
    tld = str(lab.instance("tld-test").first_address)
    assert ("test.", "NS", "tld-test.test.") in records(root)
    assert ("tld-test.test.", "A", tld) in records(root)
    assert ("root-1.", "A", str(lab.instance("root-1").first_address)) in records(root)
    assert not any(r.owner.endswith("shop.test.") for r in root.records)  # only its children


def test_each_zone_is_delegated_by_its_parent_and_holds_its_own_ns_hosts():
    lab = default()
    zones = all_zones(lab)
    ns_shop = str(lab.instance("ns-shop").first_address)
    assert {("shop.test.", "NS", "ns-shop.shop.test."), ("ns-shop.shop.test.", "A", ns_shop)} <= records(zones["test"])
    assert ("ns-shop.shop.test.", "A", ns_shop) in records(zones["shop.test"])
    soa = zones["shop.test"].of_type("SOA")[0]
    assert soa.data.startswith(f"ns-shop.shop.test. hostmaster.shop.test. {SERIAL_TOKEN} ")


def test_records_name_nodes_and_targets_become_absolute():
    lab = default()
    shop = records(all_zones(lab)["shop.test"])
    lb = str(lab.instance("lb").first_address)
    assert ("www.shop.test.", "A", lb) in shop
    assert ("store.shop.test.", "CNAME", "www.shop.test.") in shop
    assert ("shop.test.", "MX", "10 mail.shop.test.") in shop
    assert ("shop.test.", "TXT", '"v=spf1 mx -all"') in shop
    assert ("_https._tcp.shop.test.", "SRV", "0 5 443 www.shop.test.") in shop


def test_a_node_with_replicas_gets_every_replicas_address():
    text = DEFAULT_TOPOLOGY.read_text().replace("db:          {A: db}", "db:          {A: app}")
    lab = load_text(text)
    values = {r.data for r in all_zones(lab)["shop.test"].records if r.owner == "db.shop.test." and r.rtype == "A"}
    assert values == {str(i.first_address) for i in lab.instances_of("app")} and len(values) == 3


def test_reverse_zones_have_a_ptr_for_every_node_address():
    lab = default()
    zones = all_zones(lab)
    pointers = {r.owner for z in zones.values() if z.name.endswith("in-addr.arpa") for r in z.of_type("PTR")}
    for instance in lab.instances:
        for address in instance.addresses.values():
            assert IPv4Address(address).reverse_pointer + "." in pointers
    assert ("13.0.18.198.in-addr.arpa.", "PTR", "ns-shop.shop.test.") in records(zones["0.18.198.in-addr.arpa"])


def test_zone_files_are_live_and_the_plan_is_deterministic():
    first, second = make_plan(default()), make_plan(default())
    assert first == second
    ns = first.container("ns-shop")
    assert "etc/zones/shop.test.zone" in ns.live_files and "etc/named.conf" in ns.live_files
    assert ns.reload == ("/usr/local/bin/lab-named-reload",)
    assert SERIAL_TOKEN in ns.live_files["etc/zones/shop.test.zone"]


def test_an_edited_record_changes_only_the_zone_primarys_live_files():
    before = make_plan(default())
    text = DEFAULT_TOPOLOGY.read_text().replace('TXT: "v=spf1 mx -all"', 'TXT: "v=spf1 -all"')
    after = make_plan(load_text(text, str(DEFAULT_TOPOLOGY)))
    changed = [c.name for c in after.containers
               if c.live_hash() != before.container(c.name).live_hash() or c.files != before.container(c.name).files]
    assert changed == ["ns-shop"]


def test_primary_and_secondary_zone_statements():
    text = DEFAULT_TOPOLOGY.read_text().replace(
        "  ns-shop:\n    kind: dns-auth\n    networks: {backbone: 198.18.0.13}",
        "  ns-shop:\n    kind: dns-auth\n    networks: {backbone: 198.18.0.13}\n"
        "  ns-shop-2:\n    kind: dns-auth\n    networks: {backbone: 198.18.0.14}").replace(
        "servers: [ns-shop]", "servers: [ns-shop, ns-shop-2]")
    plan = make_plan(load_text(text))
    primary = plan.container("ns-shop").live_files["etc/named.conf"]
    secondary = plan.container("ns-shop-2").live_files["etc/named.conf"]
    assert "also-notify { 198.18.0.14; };" in primary and "allow-transfer { 198.18.0.14; };" in primary
    assert "type secondary;" in secondary and "primaries { 198.18.0.13; };" in secondary
    assert "etc/zones/shop.test.zone" not in plan.container("ns-shop-2").live_files


def test_the_resolver_knows_only_lab_roots_and_serves_only_lab_networks():
    lab = default()
    plan = make_plan(lab)
    hints = plan.container("resolver").live_files["etc/root.hints"]
    assert [line.split()[-1] for line in hints.splitlines() if "\tA\t" in line] == \
        [str(lab.instance("root-1").first_address)]
    conf = render_unbound_conf(lab, "resolver")
    assert "access-control: 0.0.0.0/0 refuse" in conf and 'module-config: "iterator"' in conf
    assert 'local-zone: "test." nodefault' in conf
    allowed = {ip_network(line.split()[1]) for line in conf.splitlines() if line.strip().endswith(" allow")}
    assert allowed == {n.subnet for n in lab.spec.networks.values()} | {IPv4Network("127.0.0.0/8")} | \
        {n.subnet6 for n in lab.spec.networks.values()} | {ip_network("::1")}


def test_a_resolver_serves_only_the_networks_of_the_nodes_that_use_it():
    text = """
name: two
networks: {left: {subnet: 198.19.4.0/24}, right: {subnet: 198.19.5.0/24}}
nodes:
  rt: {kind: router, networks: {left: 198.19.4.1, right: 198.19.5.1}}
  root: {kind: dns-root, networks: {left: 198.19.4.11}}
  r1: {kind: dns-resolver, networks: {left: 198.19.4.53}}
  r2: {kind: dns-resolver, networks: {right: 198.19.5.53}}
  c1: {kind: client, networks: {left: 198.19.4.10}, resolver: r1}
  c2: {kind: client, networks: {right: 198.19.5.10}, resolver: r2}
"""
    lab = load_text(text)
    assert served_networks(lab, "r1") == [IPv4Network("198.19.4.0/24")]
    assert served_networks(lab, "r2") == [IPv4Network("198.19.5.0/24")]
