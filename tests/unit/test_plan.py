"""The planner, checked directly on plans: routes, start order, resolvers, change hashes."""

import dataclasses

from lab.plan import make_plan
from lab.topology.routes import routes_for
from lab.topology import load_text, load_topology


def default_lab(root):
    return load_topology(root / "topology" / "default.yaml")


def test_routes_follow_the_topology_graph(root):
    lab = default_lab(root)
    assert routes_for(lab, lab.instance("laptop"))[0] == "default via 100.64.10.1"
    assert "198.18.30.0/24 via 198.18.0.2" in routes_for(lab, lab.instance("isp-router"))
    assert "100.64.10.0/24 via 100.64.0.2" in routes_for(lab, lab.instance("resolver"))


def test_nodes_on_the_internet_network_get_no_default_route(root):
    lab = default_lab(root)
    for name in ("isp-router", "root-1", "tld-test", "ns-shop", "fw"):
        assert not any(line.startswith("default") for line in routes_for(lab, lab.instance(name))), name


def test_every_other_network_is_routed_via_a_lab_router(root):
    lab = default_lab(root)
    router_addresses = {str(a) for i in lab.instances if i.kind in ("router", "firewall")
                        for a in i.all_addresses()}
    for instance in lab.instances:
        lines = routes_for(lab, instance)
        routed = {line.split()[0] for line in lines if not line.startswith("default")}
        assert routed == {str(prefix) for name, n in lab.spec.networks.items() if name not in instance.addresses
                          for prefix in (n.subnet, n.subnet6)}
        assert all(line.split()[-1] in router_addresses for line in lines)


def test_start_order_puts_dependencies_first(root):
    plan = make_plan(default_lab(root))
    stage = {c.name: c.stage for c in plan.containers}
    assert stage["fw"] < stage["root-1"] < stage["resolver"] < stage["laptop"]
    assert stage["db"] < stage["app-1"] < stage["lb"]


def test_each_node_depends_only_on_what_it_uses_and_the_routers_on_the_way(root):
    plan = make_plan(default_lab(root))
    needs = {c.name: set(c.depends_on) for c in plan.containers}
    # nothing to wait for: forwarding nodes, DNS servers, the database
    for name in ("home-router", "isp-router", "fw", "root-1", "tld-test", "ns-shop", "db"):
        assert needs[name] == set(), name
    assert needs["lb"] == set()      # nginx picks an upstream per request: it starts beside them
    assert needs["resolver"] == {"root-1", "isp-router"}        # primes from the root, via the ISP's router
    assert needs["app-1"] == {"db", "fw"}                       # its database, through the firewall
    assert needs["laptop"] == {"resolver", "home-router"}       # its resolver, through the home router


def test_routers_on_route_follow_the_planned_routes_hop_by_hop(root):
    from lab.plan.dependencies import routers_on_route

    lab = default_lab(root)
    laptop, db, lb = (lab.instance(name) for name in ("laptop", "db", "lb"))
    assert routers_on_route(lab, laptop, db) == ["home-router", "isp-router", "fw"]
    assert routers_on_route(lab, lb, db) == ["fw"]
    assert routers_on_route(lab, db, db) == []


def test_dependencies_form_no_cycle_in_a_generated_lab():
    text = "name: g\nnetworks:\n" + "".join(f"  n{i}: {{subnet: 198.19.{i}.0/24}}\n" for i in range(4))
    text += "nodes:\n" + "".join(f"  r{i}:\n    kind: router\n    networks: [n{i}, n{i + 1}]\n" for i in range(3))
    text += "".join(f"  c{i}:\n    kind: client\n    networks: [n{i % 4}]\n" for i in range(6))
    plan = make_plan(load_text(text, "<gen>"))
    ready: set[str] = set()
    pending = {c.name: set(c.depends_on) for c in plan.containers}
    while pending:
        runnable = [name for name, deps in pending.items() if deps <= ready]
        assert runnable, f"cycle among {pending}"
        for name in runnable:
            ready.add(name)
            del pending[name]


def test_only_routers_and_firewalls_get_net_admin_and_forwarding(root):
    for container in make_plan(default_lab(root)).containers:
        forwards = container.kind in ("router", "firewall")
        assert ("NET_ADMIN" in container.capabilities) == forwards
        assert container.sysctls["net.ipv4.ip_forward"] == ("1" if forwards else "0")


def test_resolv_conf_points_at_the_labs_resolver_never_the_engine(root):
    plan = make_plan(default_lab(root))
    for container in plan.containers:
        text = container.files["resolv.conf"]
        assert "127.0.0.11" not in text
        own_cache = "etc/dnsmasq.conf" in container.files   # the laptop's DNS cache, on 127.0.0.1
        expected = "127.0.0.1" if container.kind == "dns-resolver" or own_cache else "100.64.0.53"
        assert f"nameserver {expected}" in text
        if own_cache:   # which forwards to the lab's resolver only
            assert "server=100.64.0.53\n" in container.files["etc/dnsmasq.conf"]
    assert "etc/dnsmasq.conf" in plan.container("laptop").files


def test_docker_names_are_prefixed_by_the_lab(root):
    plan = make_plan(default_lab(root))
    assert plan.container("app-2").docker_name == "shop-app-2"
    assert {n.docker_name for n in plan.networks} >= {"shop-dmz", "shop-backbone"}
    assert all(c.labels["lab.name"] == "shop" for c in plan.containers)


def test_an_edit_changes_only_the_hash_of_the_nodes_it_touches(root):
    text = (root / "topology" / "minimal.yaml").read_text()
    before = make_plan(load_text(text))
    after = make_plan(load_text(text.replace("    kind: app\n", "    kind: app\n    port: 8081\n")))
    changed = {c.name for c in before.containers
               if c.config_hash("img") != after.container(c.name).config_hash("img")}
    assert changed == {"web"}


def test_the_database_keeps_its_data_in_a_named_volume(root):
    db = make_plan(default_lab(root)).container("db")
    assert db.volumes == {"shop-db-data": "/var/lib/postgresql/data"}
    assert dataclasses.replace(db, volumes={}).config_hash("i") != db.config_hash("i")
