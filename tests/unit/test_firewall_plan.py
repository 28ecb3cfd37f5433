"""Firewall and router rules compiled from intent: the files, the order, the decisions, the path."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.firewall.explain import computed_verdicts, confirm, counter_deltas
from lab.firewall.path import flow_path
from lab.firewall.policy import Flow, decide, node_policy
from lab.plan import make_plan
from lab.plan.iptables import MULTIPORT_SLOTS, rule_lines
from lab.firewall.live import parse_counters
from lab.topology import TopologyError, load_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "topology" / "default.yaml").read_text()


@pytest.fixture(scope="module")
def shop():
    return load_text(DEFAULT, "default.yaml")


def _edited(old: str, new: str) -> str:
    assert old in DEFAULT
    return DEFAULT.replace(old, new, 1)


def _forward_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A FORWARD")]


def _comment(line: str) -> str:
    return line.split("--comment ")[1].split()[0]


def test_firewall_rules_are_live_files_reloaded_atomically(shop):
    fw = make_plan(shop).container("fw")
    assert set(fw.live_files) == {"iptables.rules", "iptables-logging.rules",       # dual-stack:
                                  "ip6tables.rules", "ip6tables-logging.rules"}    # both families
    assert fw.reload == ("lab-firewall-load",)
    assert "iptables.rules" not in fw.files    # a rule change must not recreate the firewall


def test_forward_chain_order_state_first_intent_in_order_default_deny_last(shop):
    rules = make_plan(shop).container("fw").live_files["iptables.rules"]
    assert ":FORWARD DROP" in rules and ":INPUT DROP" in rules and ":OUTPUT ACCEPT" in rules
    names = list(dict.fromkeys(_comment(line) for line in _forward_lines(rules)))
    intents = [rule.name for rule in shop.spec.nodes["fw"].rules]
    assert names == ["established", "icmp-errors", "invalid", "engine-gateway", *intents, "default-deny"]
    first = _forward_lines(rules)[0]
    assert "--ctstate ESTABLISHED,RELATED" in first and first.endswith("-j ACCEPT")
    assert _forward_lines(rules)[-1].endswith("-j DROP")
    for kind in ("destination-unreachable", "time-exceeded"):
        assert f"--icmp-type {kind} -m comment --comment icmp-errors -j ACCEPT" in rules


def test_every_rule_line_carries_its_name_and_reject_answers_per_protocol(shop):
    rules = make_plan(shop).container("fw").live_files["iptables.rules"]
    assert all("--comment " in line for line in rules.splitlines() if line.startswith("-A"))
    ssh = [line for line in _forward_lines(rules) if "ssh-in" in line]
    assert ssh == [line for line in ssh if line.endswith("-j REJECT --reject-with tcp-reset")] and ssh
    text = _edited("proto: tcp, ports: 22, action: reject", "proto: udp, ports: 22, action: reject")
    udp = make_plan(load_text(text)).container("fw").live_files["iptables.rules"]
    assert any(line.endswith("--reject-with icmp-port-unreachable") for line in _forward_lines(udp))


def test_log_lines_only_in_the_logging_file_and_before_the_action(shop):
    fw = make_plan(shop).container("fw")
    assert "-j LOG" not in fw.live_files["iptables.rules"]
    ssh = [line for line in _forward_lines(fw.live_files["iptables-logging.rules"]) if "ssh-in" in line]
    assert "-j LOG --log-prefix" in ssh[0] and "REJECT" in ssh[1]
    prefix = ssh[0].split('--log-prefix "')[1].rstrip('"')
    assert len(prefix) <= 29 and prefix.startswith("lab ssh-in")


def test_a_node_name_means_every_replica(shop):
    text = _edited("from: lb,   to: apps,", "from: lb,   to: app,")
    rules = make_plan(load_text(text)).container("fw").live_files["iptables.rules"]
    lines = [line for line in _forward_lines(rules) if "lb-to-apps" in line]
    assert sorted(line.split("-d ")[1].split()[0] for line in lines) == [
        f"{app.first_address}/32" for app in load_text(text).instances_of("app")]


def test_many_ports_are_split_over_multiport_lines(shop):
    text = _edited("ports: [80, 443]}", "ports: [" + ", ".join(str(p) for p in range(1000, 1020)) + ", '2000-2010']}")
    lab = load_text(text)
    web_in = next(r for r in node_policy(lab, "fw") if r.name == "web-in")
    lines = rule_lines(web_in, logging=False)
    assert len(lines) == 2
    for line in lines:
        ports = line.split("--dports ")[1].split()[0].split(",")
        assert sum(2 if ":" in p else 1 for p in ports) <= MULTIPORT_SLOTS


def test_routers_forward_everything_and_only_translate(shop):
    home = make_plan(shop).container("home-router").live_files["iptables.rules"]
    subnet = shop.spec.networks["home"].subnet
    assert ":FORWARD ACCEPT" in home and not _forward_lines(home)
    assert f"-A POSTROUTING -s {subnet} ! -d {subnet} -m comment --comment masquerade-home -j MASQUERADE" in home
    isp = make_plan(shop).container("isp-router").live_files["iptables.rules"]
    filter_and_nat = isp.split("*raw")[0]   # the raw table holds only the seal (test_seal_plan.py)
    assert "-A " not in filter_and_nat and "*raw" in isp


def test_port_forwards_publish_a_service_on_the_routers_address():
    text = _edited("    masquerade: [home]", "    masquerade: [home]\n    forwards: [{port: 8080, to: laptop, to_port: 80}]")
    text = text.replace("    rules:\n", "    forwards: [{port: 2222, to: db, to_port: 5432}]\n    rules:\n", 1)
    lab = load_text(text)
    home = make_plan(lab).container("home-router").live_files["iptables.rules"]
    laptop = lab.instance("laptop").first_address
    isp_side = lab.instance("home-router").address_on("isp")
    assert (f"-A PREROUTING -d {isp_side}/32 -p tcp -m tcp --dport 8080 -m comment --comment publish-tcp-8080 "
            f"-j DNAT --to-destination {laptop}:80") in home
    fw = make_plan(lab).container("fw").live_files["iptables.rules"]
    db = lab.instance("db").first_address
    assert (f"-A FORWARD -d {db}/32 -p tcp -m conntrack --ctstate DNAT -m tcp --dport 5432 "
            "-m comment --comment publish-tcp-2222 -j ACCEPT") in fw
    # The path follows the translation: root-1 -> fw:2222 becomes db:5432, allowed by the publish rule.
    path = flow_path(lab, lab.instance("root-1"), lab.instance("fw"), "tcp", 2222)
    assert path.ends_at.name == "db" and path.delivered.port == 5432
    assert [v.rule.name for v in computed_verdicts(lab, path)] == ["publish-tcp-2222"]
    # Without the forward's port, fw itself is the target and its INPUT chain decides.
    direct = flow_path(lab, lab.instance("root-1"), lab.instance("fw"), "tcp", 2223)
    assert [(v.chain, v.rule.name) for v in computed_verdicts(lab, direct)] == [("INPUT", "input-default-deny")]


def test_the_path_from_home_is_masqueraded_before_the_firewall(shop):
    path = flow_path(shop, shop.instance("laptop"), shop.instance("lb"), "tcp", 443)
    assert [hop.instance.name for hop in path.hops] == ["home-router", "isp-router", "fw"]
    assert path.flow.source == shop.instance("laptop").first_address
    fw_hop = path.hops[-1]
    assert fw_hop.flow.source == shop.instance("home-router").address_on("isp")
    assert any("masquerades home" in note for note in path.notes)


@pytest.mark.parametrize("source,target,proto,port,rule", [
    ("laptop", "lb", "tcp", 443, "web-in"), ("laptop", "lb", "tcp", 22, "ssh-in"),
    ("laptop", "app-1", "tcp", 8000, "default-deny"), ("laptop", "db", "tcp", 5432, "default-deny"),
    ("lb", "app-2", "tcp", 8000, "lb-to-apps"), ("app-3", "db", "tcp", 5432, "apps-to-db"),
    ("lb", "db", "tcp", 5432, "default-deny"), ("app-1", "resolver", "udp", 53, "apps-dns-udp"),
    ("lb", "resolver", "tcp", 53, "site-dns-tcp"), ("db", "resolver", "udp", 53, "default-deny"),
    ("laptop", "lb", "icmp", None, "ping-lb"), ("laptop", "fw", "icmp", None, "input-icmp"),
])
def test_the_first_matching_rule_decides(shop, source, target, proto, port, rule):
    path = flow_path(shop, shop.instance(source), shop.instance(target), proto, port)
    assert [v.rule.name for v in computed_verdicts(shop, path)] == [rule]


def test_a_rule_about_the_laptop_never_matches_behind_masquerade(shop):
    policy = node_policy(load_text(_edited("name: web-in,       from: any,", "name: web-in,       from: laptop,")), "fw")
    seen_from = shop.instance("home-router").address_on("isp")
    lb = shop.instance("lb").first_address
    assert decide(policy, Flow(seen_from, lb, "tcp", 443)).name == "default-deny"


def test_counters_map_back_to_rule_names_and_confirm_the_decider():
    saved = ('[10:600] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment established -j ACCEPT\n'
             '[1:60] -A FORWARD -d 1.1.1.1/32 -p tcp -m comment --comment web-in -j LOG --log-prefix "lab web-in: "\n'
             '[1:60] -A FORWARD -d 1.1.1.1/32 -p tcp -m comment --comment web-in -j ACCEPT\n'
             '[2:120] -A FORWARD -d 1.1.1.2/32 -p tcp -m comment --comment web-in -j ACCEPT\n'
             '[0:0] -A FORWARD -m comment --comment default-deny -j DROP\n')
    before = parse_counters(saved)
    assert before[("FORWARD", "web-in")] == (3, 180)
    after = {**before, ("FORWARD", "web-in"): (4, 240), ("FORWARD", "established"): (14, 900)}
    assert counter_deltas(before, after, "FORWARD") == {"web-in": 1, "established": 4}
    lab = load_text(DEFAULT)
    path = flow_path(lab, lab.instance("laptop"), lab.instance("lb"), "tcp", 80)
    verdict = confirm(computed_verdicts(lab, path)[0], before, after)
    assert verdict.confirmed and not verdict.mismatch
    wrong = confirm(computed_verdicts(lab, flow_path(lab, lab.instance("laptop"), lab.instance("db"), "tcp", 5432))[0],
                    before, after)
    assert not wrong.confirmed and "default-deny" in wrong.mismatch and "web-in" in wrong.mismatch


def test_builtin_rule_names_are_reserved():
    text = _edited("name: ping-lb,", "name: default-deny,")
    with pytest.raises(TopologyError, match="taken by a rule every firewall has"):
        load_text(text)


def test_flow_addresses_are_plain_ipv4(shop):
    path = flow_path(shop, shop.instance("lb"), shop.instance("app-1"), "tcp", 8000)
    assert isinstance(path.flow.source, IPv4Address) and path.hops[0].leaves_on == "apps"
