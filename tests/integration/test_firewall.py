"""The firewall on a real engine: real connections through real iptables, every result
matching the rules, explained by the rule whose counter rose."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.firewall.policy import Flow, decide, node_policy
from lab.firewall import live as runtime_firewall

from .conftest import SHIFT, LabUnderTest, running_lab, shift_subnets, topology_text

SCANNED_PORTS = [*range(1, 1025), 5432, 8000]
HOLD_RULE = "      - {name: hold-open, from: any, to: lb, proto: tcp, ports: 9000}\n"
UNRELATED_RULE = "      - {name: unrelated, from: apps, to: resolver, proto: tcp, ports: 853}\n"
SSH_LINE = "action: reject, log: true}\n"


@pytest.fixture(scope="module")
def shop(engine, images, tmp_path_factory):
    text = topology_text("default", "it-fw")
    file = tmp_path_factory.mktemp("fw") / "shop.yaml"
    file.write_text(text)     # a real file, so `lab firewall` finds the topology like a user's lab
    with running_lab(engine, text, str(file)) as lab:
        lab.text = text
        yield lab


def _address(lab: LabUnderTest, name: str) -> str:
    return str(lab.lab.instance(name).first_address)


# (from, to, proto, port, the rule that must decide at fw, what the client must see)
MATRIX = [
    ("laptop", "lb", "tcp", 80, "web-in", "open"),
    ("laptop", "lb", "tcp", 443, "web-in", "open"),
    ("laptop", "lb", "tcp", 22, "ssh-in", "refused"),          # REJECT: a RST from the firewall, at once
    ("laptop", "app-1", "tcp", 8000, "default-deny", "timeout"),
    ("laptop", "db", "tcp", 5432, "default-deny", "timeout"),
    ("laptop", "lb", "icmp", None, "ping-lb", "open"),
    ("laptop", "app-2", "icmp", None, "default-deny", "timeout"),
    ("lb", "app-1", "tcp", 8000, "lb-to-apps", "open"),
    ("lb", "app-3", "tcp", 8000, "lb-to-apps", "open"),
    ("lb", "db", "tcp", 5432, "default-deny", "timeout"),
    ("app-1", "db", "tcp", 5432, "apps-to-db", "open"),
    ("app-2", "db", "tcp", 5432, "apps-to-db", "open"),
    ("app-3", "lb", "tcp", 80, "web-in", "open"),            # web-in is from any: the site too
    ("app-1", "root-1", "udp", 53, "default-deny", "timeout"),  # apps ask the resolver, not the roots
    ("db", "app-1", "tcp", 8000, "default-deny", "timeout"),
    ("app-1", "resolver", "udp", 53, "apps-dns-udp", "open"),
    ("lb", "resolver", "udp", 53, "site-dns-udp", "open"),
    ("lb", "resolver", "tcp", 53, "site-dns-tcp", "open"),
    ("db", "resolver", "udp", 53, "default-deny", "timeout"),
    ("root-1", "lb", "tcp", 22, "ssh-in", "refused"),
    ("root-1", "app-1", "tcp", 8000, "default-deny", "timeout"),
]


@pytest.mark.parametrize("source,target,proto,port,rule,result", MATRIX,
                         ids=[f"{m[0]}-{m[1]}-{m[2]}{m[3] or ''}" for m in MATRIX])
def test_every_flow_meets_the_rule_that_decides_it(shop, source, target, proto, port, rule, result):
    explanation = runtime_firewall.explain(shop.backend, shop.lab, source, target, proto, port)
    assert [v.firewall for v in explanation.verdicts] == ["fw"]
    verdict = explanation.verdicts[0]
    assert verdict.rule.name == rule
    assert explanation.probe.result == result, explanation.as_dict()
    assert verdict.confirmed and verdict.rose.get(rule, 0) >= 1, explanation.as_dict()
    assert explanation.confirmed, explanation.problems


def test_a_denied_flow_waits_and_a_rejected_one_fails_at_once(shop):
    denied = runtime_firewall.probe(shop.backend, shop.name, "laptop", _address(shop, "db"), "tcp", 5432, 1.5)
    rejected = runtime_firewall.probe(shop.backend, shop.name, "laptop", _address(shop, "lb"), "tcp", 22, 1.5)
    assert denied.result == "timeout" and denied.seconds >= 1.4
    assert rejected.result == "refused" and rejected.seconds < 0.5


def test_explain_on_the_command_line_names_the_rule_and_the_nat(shop):
    result = CliRunner().invoke(main, ["firewall", "explain", "laptop", "app-1", "8000", "--lab", shop.name,
                                       "--timeout", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [e["family"] for e in data["families"]] == [4, 6] and data["confirmed"]   # two names: both
    four = data["families"][0]
    assert four["path"] == ["laptop", "home-router", "isp-router", "fw", "app-1"]
    assert four["verdicts"][0]["rule"] == "default-deny" and four["verdicts"][0]["confirmed"]
    assert four["verdicts"][0]["source"] == str(shop.lab.instance("home-router").address_on("isp"))
    assert four["probe"]["result"] == "timeout"


def test_show_lists_the_rules_in_order_with_counters(shop):
    runtime_firewall.probe(shop.backend, shop.name, "laptop", _address(shop, "lb"), "tcp", 22, 1)
    result = CliRunner().invoke(main, ["firewall", "show", "fw", "--lab", shop.name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [row["name"] for row in data["rules"] if row["chain"] == "FORWARD"]
    intents = [rule.name for rule in shop.lab.spec.nodes["fw"].rules]
    assert names == ["established", "icmp-errors", "invalid", "engine-gateway", *intents, "default-deny"]
    ssh = next(row for row in data["rules"] if row["name"] == "ssh-in")
    assert ssh["packets"] >= 1 and ssh["action"] == "reject +log"
    assert data["logging"] == "on" and not data["not_in_topology"]
    # the seal's raw-table rules are listed too, with their counters
    seal = {row["name"]: row["packets"] for row in data["rules"] if row["chain"] == "OUTPUT"}
    assert set(seal) == {"seal-engine-dns", "seal-engine-gateway",           # dual-stack: the IPv6 seal's
                         "seal-ipv6-needs", "seal-ipv6-ospf", "seal-engine-link"} and None not in seal.values()
    # both families' counters, by family: the IPv6 link rules count only in ip6tables
    link = next(row for row in data["rules"] if row["name"] == "seal-engine-link")
    assert set(link["families"]) == {"ipv6"}


def test_log_lines_count_the_packets_they_log(shop):
    runtime_firewall.probe(shop.backend, shop.name, "laptop", _address(shop, "lb"), "tcp", 22, 1)
    code, saved = shop.exec("fw", "iptables-save", "-c", "-t", "filter")
    log_line = next(line for line in saved.splitlines() if "ssh-in" in line and "-j LOG" in line)
    assert int(log_line.split(":")[0].lstrip("[")) >= 1


def test_rules_stay_in_force_without_logging_when_the_kernel_refuses_log(shop):
    # A kernel without LOG refuses the logging file: simulate that with a LOG option no kernel knows.
    broken = "sed 's/-j LOG /-j LOG --log-level nonsense /' /lab/iptables-logging.rules > /tmp/broken.rules"
    assert shop.exec("fw", "sh", "-c", f"cp /lab/iptables-logging.rules /tmp/good.rules && {broken} "
                     "&& cp /tmp/broken.rules /lab/iptables-logging.rules")[0] == 0
    try:
        code, output = shop.exec("fw", "lab-firewall-load")
        assert code == 0, output
        assert shop.exec("fw", "cat", "/run/lab/firewall-logging")[1].startswith("unavailable")
        saved = shop.exec("fw", "iptables-save")[1]
        assert "-j LOG" not in saved and "default-deny" in saved and ":FORWARD DROP" in saved
        explanation = runtime_firewall.explain(shop.backend, shop.lab, "laptop", "lb", "tcp", 22, 1)
        assert explanation.probe.result == "refused" and explanation.confirmed
    finally:
        shop.exec("fw", "sh", "-c", "cp /tmp/good.rules /lab/iptables-logging.rules && lab-firewall-load")
    assert shop.exec("fw", "cat", "/run/lab/firewall-logging")[1].strip() == "on"


def test_servers_see_the_home_routers_address_not_the_laptops(shop):
    lb = _address(shop, "lb")
    hold = f"import socket,time; s=socket.create_connection(('{lb}', 80)); time.sleep(6)"
    shop.client.containers.get(f"{shop.name}-laptop").exec_run(["python3", "-c", hold], detach=True)
    peers = ""
    for _ in range(30):
        peers = shop.exec("lb", "ss", "-tnH", "state", "established", "( sport = :80 )")[1]
        if peers.strip():
            break
        time.sleep(0.1)
    assert str(shop.lab.instance("home-router").address_on("isp")) + ":" in peers, peers
    assert _address(shop, "laptop") not in peers


def _scan_open_ports(shop, targets: list[str]) -> dict[str, set[int]]:
    ports = "1-1024,5432,8000"
    code, output = shop.exec("laptop", "nmap", "-n", "-Pn", "-sT", "-p", ports, "--max-retries", "1",
                             "--min-rate", "2000", "--host-timeout", "120s", "-oG", "-", *targets)
    assert code == 0, output
    found = {target: set() for target in targets}
    for line in output.splitlines():
        if line.startswith("Host:") and "Ports:" in line:
            host = line.split()[1]
            entries = line.split("Ports:")[1].split("Ignored State:")[0].split(",")
            found[host] = {int(e.strip().split("/")[0]) for e in entries if "/open/" in e}
    return found


def test_a_port_scan_from_home_finds_exactly_the_allowed_ports_open(shop):
    names = ["lb", "app-1", "app-2", "app-3", "db"]
    targets = {_address(shop, name): name for name in names}
    found = _scan_open_ports(shop, list(targets))
    # What the rules allow from home: the firewall sees home-router's address (masquerade).
    policy = node_policy(shop.lab, "fw")
    home = shop.lab.instance("home-router").address_on("isp")
    allowed = {address: {port for port in SCANNED_PORTS
                         if decide(policy, Flow(home, shop.lab.instance(name).first_address, "tcp", port)).action
                         == "allow"}
               for address, name in targets.items()}
    assert allowed[_address(shop, "lb")] == {80, 443}
    assert found == allowed


def _wait_for(shop, node: str, command: list[str], text: str, seconds: float = 10) -> str:
    output = ""
    for _ in range(int(seconds * 10)):
        output = shop.exec(node, *command)[1]
        if text in output:
            return output
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {node}: {output!r}")


def test_an_established_connection_survives_a_rule_reload(shop):
    held = shop.text.replace(SSH_LINE, SSH_LINE + HOLD_RULE, 1)
    edited = held.replace(HOLD_RULE, HOLD_RULE + UNRELATED_RULE, 1)
    assert held != shop.text and edited != held
    try:
        report = shop.up(held)
        assert report.reloaded == ["fw"] and not report.recreated
        server = ("import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                  "s.bind(('', 9000)); s.listen(1); c,_=s.accept(); f=open('/tmp/held.log','w')\n"
                  "for line in c.makefile():\n f.write(line); f.flush()")
        client = (f"import os,socket,time; s=socket.create_connection(('{_address(shop, 'lb')}', 9000)); "
                  "s.sendall(b'one\\n')\nwhile not os.path.exists('/tmp/go'): time.sleep(0.1)\n"
                  "s.sendall(b'two\\n'); time.sleep(2)")
        shop.client.containers.get(f"{shop.name}-lb").exec_run(["python3", "-c", server], detach=True)
        _wait_for(shop, "lb", ["ss", "-ltnH"], ":9000 ")
        shop.client.containers.get(f"{shop.name}-laptop").exec_run(["python3", "-c", client], detach=True)
        _wait_for(shop, "lb", ["cat", "/tmp/held.log"], "one")

        firewall_id = shop.client.containers.get(f"{shop.name}-fw").id
        report = shop.up(edited)
        assert report.reloaded == ["fw"] and not report.recreated
        assert shop.client.containers.get(f"{shop.name}-fw").id == firewall_id
        assert "unrelated" in shop.exec("fw", "iptables-save")[1]

        shop.exec("laptop", "touch", "/tmp/go")
        assert _wait_for(shop, "lb", ["cat", "/tmp/held.log"], "two") == "one\ntwo\n"
    finally:
        shop.up(shop.text)
    assert "hold-open" not in shop.exec("fw", "iptables-save")[1]


# Over IPv6, the same intent as over IPv4: (from, to, port, the rule, what the client sees)
MATRIX6 = [("laptop", "lb", 443, "web-in", "open"),
           ("laptop", "lb", 22, "ssh-in", "refused"),
           ("laptop", "db", 5432, "default-deny", "timeout")]


@pytest.mark.parametrize("source,target,port,rule,result", MATRIX6, ids=[f"{m[0]}-{m[1]}-{m[2]}" for m in MATRIX6])
def test_over_ipv6_the_same_rule_decides_and_its_ipv6_counter_rises(shop, source, target, port, rule, result):
    """What the firewall blocks over IPv4 it blocks over IPv6: the probe's own result, and the
    rule's counter in ip6tables (not iptables) rising, as the kernel counted it."""
    address = str(shop.lab.instance(target).first_address6)
    before = runtime_firewall.read_counters_by_family(shop.backend, shop.name, "fw")
    seen = runtime_firewall.probe(shop.backend, shop.name, source, address, "tcp", port, 1.5)
    after = runtime_firewall.read_counters_by_family(shop.backend, shop.name, "fw")
    assert seen.result == result, (address, seen)
    rose6 = after[6][("FORWARD", rule)][0] - before[6].get(("FORWARD", rule), (0, 0))[0]
    assert rose6 >= 1, (rule, before[6], after[6])
    flow = Flow(shop.lab.instance("home-router").addresses6["isp"], shop.lab.instance(target).first_address6,
                "tcp", port)
    assert decide(node_policy(shop.lab, "fw"), flow).name == rule   # what `lab firewall explain` computes


def _ip6tables_packets(shop, rule: str) -> int:
    """The packets ip6tables counted for a rule of fw's FORWARD chain, read by the test itself
    (iptables-save's own format: "[packets:bytes] -A FORWARD ... --comment NAME -j TARGET")."""
    code, saved = shop.exec("fw", "ip6tables-save", "-c", "-t", "filter")
    assert code == 0, saved
    total = 0
    for line in saved.splitlines():
        if line.startswith("[") and " -A FORWARD " in line and f"--comment {rule} " in line and "-j LOG" not in line:
            total += int(line[1:].split(":")[0])
    return total


# (from, to as the user gives it, port, the ip6tables rule that must decide, what the client sees)
EXPLAIN6 = [("laptop", "lb", 443, "web-in", "open"),
            ("laptop", "lb", 22, "ssh-in", "refused"),
            ("laptop", "db", 5432, "default-deny", "timeout"),
            ("app-2", "db", 5432, "apps-to-db", "open")]


@pytest.mark.parametrize("source,target,port,rule,result", EXPLAIN6, ids=[f"{m[0]}-{m[1]}-{m[2]}" for m in EXPLAIN6])
def test_explain_over_ipv6_names_the_ip6tables_rule_whose_counter_rises(shop, source, target, port, rule, result):
    """`explain -6`: the verdict names the rule, and what really happened agrees: the probe's
    connection over IPv6, and that rule's ip6tables counter, read here, going up."""
    before = _ip6tables_packets(shop, rule)
    explained = CliRunner().invoke(main, ["firewall", "explain", source, target, str(port), "-6", "--lab", shop.name,
                                          "--timeout", "1.5", "--json"])
    after = _ip6tables_packets(shop, rule)
    assert explained.exit_code == 0, explained.output
    data = json.loads(explained.output)
    [six] = data["families"]
    assert six["family"] == 6 and six["address"] == str(shop.lab.instance(target).first_address6)
    [verdict] = six["verdicts"]
    assert (verdict["firewall"], verdict["rule"]) == ("fw", rule)
    assert six["probe"]["result"] == result and verdict["confirmed"], six
    assert after - before >= 1, (rule, before, after)


def test_explain_by_address_and_both_families_in_words(shop):
    db6 = str(shop.lab.instance("db").first_address6)
    by_address = CliRunner().invoke(main, ["firewall", "explain", "laptop", db6, "5432", "--lab", shop.name,
                                           "--timeout", "1", "--json"])
    assert by_address.exit_code == 0, by_address.output
    assert [e["family"] for e in json.loads(by_address.output)["families"]] == [6]   # the address says
    both = CliRunner().invoke(main, ["firewall", "explain", "laptop", "lb", "22", "--lab", shop.name, "--timeout", "1"])
    assert both.exit_code == 0, both.output
    flat = " ".join(both.output.split())
    assert "over IPv4" in flat and "over IPv6" in flat
    assert "fw (iptables FORWARD" in flat and "fw (ip6tables FORWARD" in flat
    assert flat.count("rule 'ssh-in' -> reject, confirmed") == 2, both.output


@pytest.mark.parametrize("words,message", [
    (["laptop", "fd6c:6162:198:10::99", "443"], "is no address of a node of lab"),     # in a lab prefix, nobody's
    (["laptop", "2001:db8::1", "443"], "is no address of a node of lab"),
    (["laptop", "nosuch", "443"], "has no node 'nosuch'"),
    (["laptop", "198.18.10.10", "443", "-6"], "-6 asks for IPv6, but the address given is IPv4"),
])
def test_explain_refuses_an_end_not_in_the_lab_with_exit_2(shop, words, message):
    words = [shift_subnets(word) for word in words]
    refused = CliRunner().invoke(main, ["firewall", "explain", *words, "--lab", shop.name])
    assert refused.exit_code == 2, refused.output
    assert message in refused.output and "Traceback" not in refused.output


V4_ONLY = """name: it-fw6-v4{suffix}
networks:
  lan: {{subnet: 100.64.104.0/24}}
nodes:
  one: {{kind: client, networks: {{lan: 100.64.104.10}}}}
  two: {{kind: client, networks: {{lan: 100.64.104.20}}}}
"""


def test_explain_refuses_a_family_the_network_lacks(engine, images, tmp_path):
    """A real lab whose network has no IPv6 prefix: -6 is refused naming the node and the
    network, and two names are explained over IPv4 with a note saying why not IPv6."""
    text = shift_subnets(V4_ONLY.format(suffix=f"-{SHIFT}" if SHIFT else ""))
    file = tmp_path / "v4.yaml"
    file.write_text(text)
    with running_lab(engine, text, str(file)) as lab:
        refused = CliRunner().invoke(main, ["firewall", "explain", "one", "two", "80", "-6", "--lab", lab.name])
        assert refused.exit_code == 2, refused.output
        assert ("node 'one' has no IPv6 address: its networks (lan) carry no IPv6 prefix "
                "(add `subnet6:` to one of them)") in " ".join(refused.output.split())
        explained = CliRunner().invoke(main, ["firewall", "explain", "one", "two", "80", "--lab", lab.name,
                                              "--timeout", "1", "--json"])
        assert explained.exit_code == 0, explained.output
        data = json.loads(explained.output)
        assert [e["family"] for e in data["families"]] == [4]
        assert data["not_explained"][0].startswith("not over IPv6: node 'one' has no IPv6 address")
        # no firewall between them: nothing to confirm, but the probe really ran (refused: nothing listens)
        assert data["families"][0]["verdicts"] == [] and data["families"][0]["probe"]["result"] == "refused"
