"""IPv6 in the plan and the trace's readers: the default lab is dual-stack."""

from ipaddress import IPv6Address, ip_address

from lab.topology import load_text, load_topology   # first: the firewall's modules import it
from lab.firewall.policy import Flow, decide, node_policy
from lab.plan import make_plan
from lab.plan.dns import render_unbound_conf
from lab.plan.zones import all_zones
from lab.topology.copies import copy_texts
from lab.trace.web import parse_curl
from lab.trace.wire import parse_packets

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DEFAULT = ROOT / "topology" / "default.yaml"


def shop():
    return load_topology(DEFAULT)


def test_every_node_of_the_default_lab_is_dual_stack():
    lab = shop()
    assert all(i.addresses6.keys() == i.addresses.keys() for i in lab.instances)
    plan = make_plan(lab)
    assert all(n.subnet6 and n.gateway6 for n in plan.networks)
    laptop = plan.container("laptop")
    assert laptop.sysctls["net.ipv6.conf.all.disable_ipv6"] == "0"
    assert plan.container("fw").sysctls["net.ipv6.conf.all.forwarding"] == "1"


def test_v6_routes_follow_the_v4_paths_through_the_same_routers():
    lab = shop()
    routes = make_plan(lab).container("laptop").files["routes"].splitlines()
    home_router = lab.instance("home-router")
    v6 = [line for line in routes if ":" in line]
    assert v6[0] == f"default via {home_router.addresses6['home']}"
    assert {line.split()[0] for line in v6[1:]} == {str(n.subnet6) for name, n in lab.spec.networks.items()
                                                    if name != "home"}


def test_the_firewall_writes_the_same_intent_for_each_family():
    plan = make_plan(shop()).container("fw")
    v4, v6 = plan.live_files["iptables.rules"], plan.live_files["ip6tables.rules"]
    lb = shop().instance("lb")
    assert f"-d {lb.address_on('dmz')}/32 -p tcp -m multiport --dports 80,443 -m comment --comment web-in" in v4
    assert f"-d {lb.addresses6['dmz']}/128 -p tcp -m multiport --dports 80,443 -m comment --comment web-in" in v6
    assert "--reject-with tcp-reset" in v6 and "-p ipv6-icmp -m icmp6 --icmpv6-type packet-too-big" in v6
    assert "." not in "".join(line.split("-d ")[1].split()[0] for line in v6.splitlines()
                              if line.startswith("-A") and " -d " in line)   # no IPv4 address in the v6 file


def test_a_rule_about_a_v4_only_node_has_no_v6_line():
    text = DEFAULT.read_text().replace("  data:     {subnet: 198.18.30.0/24, subnet6: \"fd6c:6162:198:30::/64\",",
                                       "  data:     {subnet: 198.18.30.0/24,")
    lab = load_text(text)
    v6 = make_plan(lab).container("fw").live_files["ip6tables.rules"]
    assert "apps-to-db" not in v6          # `to: db`: db has IPv4 only; "any" would be wrong
    assert "apps-to-db" in make_plan(lab).container("fw").live_files["iptables.rules"]


def test_decide_reads_a_v6_flow_with_the_v6_addresses():
    lab = shop()
    policy = node_policy(lab, "fw")
    laptop, lb, db = (lab.instance(n) for n in ("home-router", "lb", "db"))
    web = decide(policy, Flow(laptop.addresses6["isp"], lb.addresses6["dmz"], "tcp", 443))
    database = decide(policy, Flow(laptop.addresses6["isp"], db.addresses6["data"], "tcp", 5432))
    assert (web.name, database.name) == ("web-in", "default-deny")


def test_the_v6_seal_drops_the_gateways_and_the_link_but_not_neighbour_discovery():
    lab = shop()
    seal = make_plan(lab).container("laptop").files["seal6.rules"]
    lines = [line for line in seal.splitlines() if line.startswith("-A")]
    for gateway in lab.gateways6.values():
        assert f"-A OUTPUT -d {gateway}/128 -m comment --comment seal-engine-gateway -j DROP" in lines
    accepts = [i for i, line in enumerate(lines) if "--icmpv6-type 135" in line and "ACCEPT" in line]
    drops = [i for i, line in enumerate(lines) if "seal-engine-link -j DROP" in line]
    assert accepts and drops and max(accepts) < min(drops)


def test_dns_has_aaaa_with_a_and_ip6_arpa_pointers():
    lab = shop()
    zones = all_zones(lab)
    www = {r.rtype: r.data for r in zones["shop.test"].records if r.owner == "www.shop.test."}
    assert www == {"A": str(lab.instance("lb").first_address), "AAAA": str(lab.instance("lb").first_address6)}
    lb6 = lab.instance("lb").first_address6
    reverse = next(z for name, z in zones.items() if name.endswith("ip6.arpa") and
                   lb6.reverse_pointer.endswith(name))
    assert any(r.owner == lb6.reverse_pointer + "." and r.data == "lb.lab." for r in reverse.records)
    assert any(r.rtype == "NS" and r.owner == f"{reverse.name}." for r in zones["."].records)
    glue = [r for r in zones["."].records if r.rtype == "AAAA"]
    assert glue and all(isinstance(ip_address(r.data), IPv6Address) for r in glue)


def test_the_resolver_listens_and_asks_over_v6():
    conf = render_unbound_conf(shop(), "resolver")
    assert "interface: ::0" in conf and "do-ip6: yes" in conf


def test_nginx_listens_on_both_families():
    plan = make_plan(shop())
    assert "listen [::]:443 ssl default_server;" in plan.container("lb").live_files["etc/nginx.conf"]


def test_classroom_copies_move_their_v6_prefixes_apart():
    lab = shop()
    texts = copy_texts(DEFAULT.read_text(), lab, 2)
    copies = [load_text(text) for text in texts.values()]
    prefixes = [n.subnet6 for one in (lab, *copies) for n in one.spec.networks.values()]
    assert len(prefixes) == 18
    assert not any(a.overlaps(b) for i, a in enumerate(prefixes) for b in prefixes[i + 1:])


def test_tcpdump_ipv6_lines_and_curl_connected_line_are_read():
    packets = parse_packets("1700000000.100000 eth0 Out IP6 fd6c:6162:64:10::a.41006 > "
                            "fd6c:6162:198:10::a.443: Flags [S], seq 12345, win 64800, length 0")
    assert (packets[0].src, packets[0].sport, packets[0].dst, packets[0].dport) == \
        ("fd6c:6162:64:10::a", 41006, "fd6c:6162:198:10::a", 443)
    curl = parse_curl(0, "", "* Connected to www.shop.test (fd6c:6162:198:10::a) port 443 (#0)\n")
    assert curl.connected_to == "fd6c:6162:198:10::a"


def test_checks_over_ipv6_use_the_v6_address_and_expect_the_v6_records():
    from lab.checks.probes import judge, probe_for
    lab = shop()
    checks = {c.name: c for c in lab.spec.checks}
    flow = probe_for(lab, checks["visitors cannot reach the database over IPv6 either"])
    assert flow.command == ["nc", "-z", "-6", "-w", "3", str(lab.instance("db").first_address6), "5432"]
    http = probe_for(lab, checks["the shop answers over IPv6"])
    assert "-6" in http.command
    aaaa = checks["the shop's name has an IPv6 address too"]
    assert judge(lab, aaaa, 0, f"{lab.instance('lb').first_address6}\n").passed
    assert not judge(lab, aaaa, 0, f"{lab.instance('lb').first_address}\n").passed
