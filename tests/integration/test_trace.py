"""`lab trace` on a running default lab: a truth matrix of breakages.

For each breakage the trace's outcome (category), failing step, node and reason are
asserted, and what it says is checked against an independent observation: a plain
curl's exit code and time, a dig, the rule counters read separately, the app's and
the lb's own logs, a wall clock around the trace. One lab for the module (one
bring-up); each breakage is undone before the next test.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.errors import RuntimeFailure
from lab.pki import KeyAndCert, issue_server_cert, make_ca
from lab.backends.docker import inspect
from lab.backends.docker.backend import DockerBackend
from lab.trace.resolver import dig, flush, flush_stub
from lab.firewall.live import read_counters, read_counters_by_family
from lab.state import state_dir
from lab.trace import journey
from lab.trace.journey import trace_url
from lab.trace.model import OBSERVED
from lab.trace.web import RequestOptions

from .conftest import ROOT, lab_cli, running_lab, topology_text

CLIENT_STEPS = ("dns", "tcp", "tls", "request", "transfer")


@pytest.fixture(scope="module")
def shop(engine, images, tmp_path_factory):
    text = topology_text("default", "it-trace")
    # a name pointing at an address of the site's network that no node has
    lb_address = next(line for line in text.splitlines() if "networks: {dmz:" in line).split(":")[-1].strip(" }")
    nowhere = lb_address.rsplit(".", 1)[0] + ".99"
    text = text.replace("      _https._tcp:", f"      nowhere:     {{A: {nowhere}}}\n      _https._tcp:", 1)
    file = tmp_path_factory.mktemp("trace") / "shop.yaml"
    file.write_text(text)
    with running_lab(engine, text, str(file)) as lab:
        lab.file, lab.nowhere = file, nowhere
        yield lab


# The API: lb, an app replica and the database (the page itself is the web tier's, without SQL).
API_URL = "https://www.shop.test/api/products"


def trace(engine, shop, url=API_URL, source=None, **options):
    return trace_url(DockerBackend(engine), shop.lab, url, source, RequestOptions(**options) if options else None)


def timed(engine, shop, url, source=None):
    began = time.monotonic()
    result = trace(engine, shop, url, source)
    return result, (time.monotonic() - began) * 1000


def plain_curl(shop, node: str, url: str) -> tuple[int, float]:
    """An independent measure: curl's own exit code and total time, nothing of lab.trace."""
    code, out = shop.exec(node, "curl", "-s", "-o", "/dev/null", "--connect-timeout", "3", "-w", "%{time_total}", url)
    return code, float(out.strip() or 0) * 1000


def served_again(shop, seconds: float = 30) -> None:
    """After replicas come back, nginx still skips them until its fail_timeout ends: wait for that."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(3):   # round robin: three answers in a row from live replicas
            code, out = shop.exec("laptop", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "https://www.shop.test/api/work?ms=0")
            if out.strip() != "200":
                break
        else:
            return
        time.sleep(1)
    raise AssertionError("the lb did not serve the shop again")


def every_step(result):
    for step in result.steps:
        yield step
        yield from step.children


def outcome(result) -> tuple:
    return result.outcome["category"], result.outcome["step"], result.outcome["node"]


def received(shop, node: str) -> int:
    """Packets a node's interfaces received, from the kernel's own counters (independent of tcpdump)."""
    code, out = shop.exec(node, "sh", "-c", "cat /sys/class/net/eth*/statistics/rx_packets")
    assert code == 0, out
    return sum(int(n) for n in out.split())


def test_a_cold_trace_is_observed_end_to_end_and_its_times_add_up(engine, shop):
    flush(DockerBackend(engine), shop.name, "resolver")
    assert flush_stub(DockerBackend(engine), shop.name, "laptop")   # and the laptop's own DNS cache
    before = {router: received(shop, router) for router in ("home-router", "isp-router", "fw")}
    result = trace(engine, shop)
    after = {router: received(shop, router) for router in ("home-router", "isp-router", "fw")}
    assert result.ok and result.status == 200, result.summary
    assert [s.kind for s in result.steps] == ["dns", "path", "firewall", "tcp", "tls", "request", "lb", "app",
                                              "db", "transfer"]
    dns = result.step("dns")
    asked = [c.node for c in dns.children]
    assert sorted(set(asked), key=asked.index) == ["root-1", "tld-test", "ns-shop"], asked
    assert "from the resolver's cache" not in dns.detail
    # every step is read from this request: nothing is derived from the topology
    assert all(s.source == OBSERVED for s in every_step(result)), \
        [s.title for s in every_step(result) if s.source != OBSERVED]
    # one child per router, in path order, each seen on its own wire; the kernel counted at least as much
    hops = result.step("path").children
    assert [h.node for h in hops] == ["home-router", "isp-router", "fw"]
    assert "became" in hops[0].detail and "became" not in hops[1].detail   # the masquerade, seen on the wire
    for hop in hops:   # it received at least the SYN and the SYN-ACK
        assert "the SYN-ACK came back through here" in hop.detail
        assert after[hop.node] - before[hop.node] >= 2, (hop.node, hop.detail)
    # the TLS handshake split on the wire: the server's part is small, the client's own work is the rest
    tls = result.step("tls")
    server = next(c for c in tls.children if c.node == "lb")
    assert server.duration_ms < tls.duration_ms and "ServerHello" in server.detail
    # parents contain their children; the client steps tile the header's total
    for parent in every_step(result):
        for child in parent.children:
            assert parent.start_ms <= child.start_ms + 0.01   # times are rounded to 0.001 ms
            assert child.start_ms + child.duration_ms <= parent.start_ms + parent.duration_ms + 0.01
    client = [s for s in result.steps if s.kind in CLIENT_STEPS]
    for before, after in zip(client, client[1:]):
        assert before.start_ms + before.duration_ms == pytest.approx(after.start_ms, abs=0.01)
    assert client[-1].start_ms + client[-1].duration_ms == pytest.approx(result.total_ms, abs=0.01)
    request = result.step("request")
    for kind in ("lb", "app", "db"):
        step = result.step(kind)
        assert request.start_ms - 0.01 <= step.start_ms <= step.start_ms + step.duration_ms <= \
            request.start_ms + request.duration_ms + 0.01, [(s.kind, s.start_ms, s.duration_ms) for s in result.steps]
    assert "matches www.shop.test" in result.step("tls").detail


def test_trace_6_goes_over_ipv6_end_to_end_and_says_so_with_the_addresses_seen(engine, shop):
    """-6: curl connects to the lb's IPv6 address; every router's own capture saw the SYN
    with IPv6 addresses (the home router's masquerade too); the lb logged the request with
    the home router's IPv6 address as the client, and the rule counted it in ip6tables."""
    lb6 = str(shop.lab.instance("lb").first_address6)
    masked = str(shop.lab.instance("home-router").addresses6["isp"])
    before = read_counters_by_family(DockerBackend(engine), shop.name, "fw")[6].get(("FORWARD", "web-in"), (0, 0))
    result = trace(engine, shop, family=6)
    after = read_counters_by_family(DockerBackend(engine), shop.name, "fw")[6][("FORWARD", "web-in")]
    assert result.ok and result.status == 200, result.summary
    assert result.step("tcp").detail == f"connected to [{lb6}]:443 over IPv6 (asked with -6)"
    assert f"({lb6})" in " ".join(result.step("tcp").evidence)   # curl's own Connected line
    assert lb6 in result.step("dns").detail
    hops = result.step("path").children
    assert [h.node for h in hops] == ["home-router", "isp-router", "fw"]
    assert all(f"[{lb6}]:443" in h.detail for h in hops)
    assert f"became [{masked}]:" in hops[0].detail
    assert after[0] > before[0]
    line = next(l for l in inspect.log_text(engine, shop.name, "lb").splitlines() if result.trace_id in l)
    assert masked in line, line


def test_trace_4_and_curls_own_choice_say_which_family(engine, shop):
    four = trace(engine, shop, family=4)
    assert four.ok and four.step("tcp").detail.endswith("over IPv4 (asked with -4)")
    assert str(shop.lab.instance("lb").first_address) in four.step("tcp").detail
    chosen = trace(engine, shop)
    tcp = chosen.step("tcp").detail
    family = "IPv6" if f"[{shop.lab.instance('lb').first_address6}]" in tcp else "IPv4"
    assert chosen.ok and tcp.endswith(f"over {family} (no -4/-6 given: curl chose it)"), tcp


def test_the_replica_named_is_the_one_whose_log_holds_the_request(engine, shop):
    result = trace(engine, shop)
    served_by = result.step("app").node
    assert served_by in result.step("lb").detail
    assert result.trace_id in inspect.log_text(engine, shop.name, served_by)
    others = [f"app-{i}" for i in (1, 2, 3) if f"app-{i}" != served_by]
    assert all(result.trace_id not in inspect.log_text(engine, shop.name, other) for other in others)


def test_the_rule_named_is_the_one_whose_counter_rose(engine, shop):
    before = read_counters(DockerBackend(engine), shop.name, "fw")
    firewall = trace(engine, shop).step("firewall")
    after = read_counters(DockerBackend(engine), shop.name, "fw")
    assert firewall.node == "fw" and firewall.detail == "rule 'web-in' allowed tcp/443"
    assert after[("FORWARD", "web-in")][0] > before[("FORWARD", "web-in")][0]


def test_two_traces_in_a_row_show_the_dns_cache(engine, shop):
    first = trace(engine, shop)
    second = trace(engine, shop)
    dns = second.step("dns")
    assert "from laptop's DNS cache" in dns.detail and dns.children == [] and dns.node == "laptop"
    assert any("cached www.shop.test is" in note for note in dns.evidence), dns.evidence
    assert "saw no query" in " ".join(dns.evidence)
    # the stub's own record says it: the first lookup was forwarded, the second was not
    log = shop.exec("laptop", "cat", "/run/lab/dnsmasq.log")[1]
    assert first.step("dns") is not None and "forwarded www.shop.test" in log


def test_after_the_os_cache_is_flushed_the_resolver_cache_answers(engine, shop):
    trace(engine, shop)
    assert flush_stub(DockerBackend(engine), shop.name, "laptop")
    dns = trace(engine, shop).step("dns")
    assert "from the resolver's cache" in dns.detail and dns.children == [] and dns.node == "resolver"
    assert any("forwarded www.shop.test to" in note for note in dns.evidence), dns.evidence


def test_nxdomain_stops_at_dns_and_names_the_server_that_said_so(engine, shop):
    result = trace(engine, shop, "https://nothing.shop.test/")
    assert outcome(result) == ("dns.nxdomain", "dns", "ns-shop") and not result.ok
    assert [s.kind for s in result.steps] == ["dns"]
    assert result.step("dns").duration_ms == result.total_ms > 0.1   # the wait, not curl's 0.1 ms after a failure
    seen = dig(DockerBackend(engine), shop.name, "laptop", "nothing.shop.test")
    assert seen.status == "NXDOMAIN" and any("shop.test" in r.name for r in seen.authority)


def test_an_unknown_tld_is_nxdomain_from_the_root(engine, shop):
    flush(DockerBackend(engine), shop.name, "resolver")
    result = trace(engine, shop, "https://www.shop.nope/")
    assert outcome(result) == ("dns.nxdomain", "dns", "root-1"), result.summary
    assert dig(DockerBackend(engine), shop.name, "laptop", "www.shop.nope").status == "NXDOMAIN"


def test_a_reject_rule_is_refused_at_once_by_the_rule(engine, shop):
    before = read_counters(DockerBackend(engine), shop.name, "fw")
    result = trace(engine, shop, "http://www.shop.test:22/")
    after = read_counters(DockerBackend(engine), shop.name, "fw")
    assert outcome(result) == ("tcp.refused", "firewall", "fw") and result.status is None
    assert "rule 'ssh-in' rejects tcp/22" in result.summary
    assert after[("FORWARD", "ssh-in")][0] > before[("FORWARD", "ssh-in")][0]
    tcp = result.step("tcp")
    assert not tcp.ok and tcp.duration_ms < 100 and result.total_ms < 100
    code, plain_ms = plain_curl(shop, "laptop", "http://www.shop.test:22/")
    assert code == 7 and plain_ms < 100        # curl: "Couldn't connect" (refused), quickly


def test_a_drop_rule_is_a_timeout_with_the_rule_and_its_real_length(engine, shop):
    result, wall_ms = timed(engine, shop, "http://db.shop.test:5432/")
    assert outcome(result) == ("tcp.dropped", "firewall", "fw")
    assert "rule 'default-deny' drops tcp/5432" in result.summary
    tcp = result.step("tcp")
    assert 2900 < tcp.duration_ms < 3500 and tcp.duration_ms < wall_ms   # curl's 3 s connect timeout, measured


def test_a_name_outside_the_lab_nodes_still_shows_the_firewall_that_counted_it(engine, shop):
    before = read_counters(DockerBackend(engine), shop.name, "fw")
    result = trace(engine, shop, "https://nowhere.shop.test/")
    after = read_counters(DockerBackend(engine), shop.name, "fw")
    assert outcome(result) == ("tcp.dropped", "firewall", "fw"), result.summary
    assert f"no node of the lab has {shop.nowhere}" in result.summary
    assert after[("FORWARD", "default-deny")][0] > before[("FORWARD", "default-deny")][0]
    assert result.step("firewall").source == OBSERVED
    hops = result.step("path").children             # no node has the address: the wire alone tells the way
    assert [h.node for h in hops] == ["home-router", "isp-router", "fw"] and "dropped here" in hops[-1].detail


@pytest.mark.parametrize("source", ["app-1", "root-1"])   # an app server, a DNS server
def test_any_node_trusts_the_lab_ca_so_a_trace_from_it_succeeds(engine, shop, source):
    code, _ = plain_curl(shop, source, "https://www.shop.test/")
    assert code == 0                           # independent: a bare curl there verifies the lb's certificate
    result = trace(engine, shop, source=source)
    assert result.ok and result.status == 200 and result.client == source, result.summary
    assert result.step("tls").ok and "matches www.shop.test" in result.step("tls").detail


@contextmanager
def swapped_certificate(engine, shop, names, ca=None):
    """The lb serves a certificate for other names (of the lab's CA unless another is given),
    then its own again."""
    container = engine.containers.get(f"{shop.name}-lb")
    original = {name: container.exec_run(["cat", f"/lab/tls/{name}"]).output for name in ("server.crt", "server.key")}

    def install(files: dict[str, bytes]):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
        container.put_archive("/lab/tls", buffer.getvalue())
        assert container.exec_run(["nginx", "-s", "reload"]).exit_code == 0
        time.sleep(0.5)

    if ca is None:   # the lab's own CA as `lab up` made it (name-constrained to the lab's zones), read, never remade
        directory = state_dir(shop.name)
        ca = KeyAndCert((directory / "ca.key").read_text(), (directory / "ca.crt").read_text())
    issued = issue_server_cert(ca, names)
    install({"server.crt": issued.cert_pem.encode(), "server.key": issued.key_pem.encode()})
    try:
        yield
    finally:
        install(original)


def test_a_certificate_from_another_ca_is_untrusted(engine, shop):
    # Every node trusts the lab CA: the untrusted case is made on purpose, by the lb presenting
    # a certificate for the right name from a CA no node knows.
    with swapped_certificate(engine, shop, ["www.shop.test"], ca=make_ca("not-the-lab")):
        code, _ = plain_curl(shop, "laptop", "https://www.shop.test/")
        result = trace(engine, shop)
    assert code == 60                          # independent: curl's "peer certificate cannot be authenticated"
    assert outcome(result) == ("tls.untrusted", "tls", "lb"), result.summary
    assert "laptop does not trust the certificate lb presented" in result.summary
    assert "www.shop.test" in result.summary   # the names the certificate carries
    tcp, tls = result.step("tcp"), result.step("tls")
    assert tcp.ok and not tls.ok and tls.start_ms == pytest.approx(tcp.start_ms + tcp.duration_ms)
    assert tls.start_ms + tls.duration_ms == pytest.approx(result.total_ms)


def test_a_certificate_for_other_names_is_a_name_mismatch(engine, shop):
    with swapped_certificate(engine, shop, ["elsewhere.test"]):
        code, _ = plain_curl(shop, "laptop", "https://www.shop.test/")
        result = trace(engine, shop)
    assert code == 60
    assert outcome(result) == ("tls.name-mismatch", "tls", "lb"), result.summary
    assert "is not for www.shop.test" in result.summary and "elsewhere.test" in result.summary


def test_a_stopped_replica_shows_the_retry_on_another(engine, shop):
    inspect.stop_node(engine, shop.name, "app-1")
    try:
        retried = None
        for _ in range(4):   # round robin: within a few requests one goes to app-1 first
            result = trace(engine, shop)
            assert result.ok, result.summary
            if result.step("lb").detail.startswith("retried"):
                retried = result
                break
        assert retried is not None, "no request was retried on another replica"
        lb = retried.step("lb")
        assert lb.children[0].peer == "app-1" and not lb.children[0].ok
        assert "app-1 (connect timed out after" in lb.detail and retried.step("app").node != "app-1"
        assert 900 < lb.children[0].duration_ms < 1500    # nginx's 1 s proxy_connect_timeout, as it logged it
    finally:
        inspect.start_node(engine, shop.name, "app-1")
        served_again(shop)


def test_all_replicas_stopped_is_the_lb_own_504(engine, shop):
    for app in ("app-1", "app-2", "app-3"):
        inspect.stop_node(engine, shop.name, app)
    try:
        result, wall_ms = timed(engine, shop, API_URL)
    finally:
        for app in ("app-1", "app-2", "app-3"):
            inspect.start_node(engine, shop.name, app)
        served_again(shop)
    # nginx may skip a replica it marked down after an earlier failure (max_fails): then it logs
    # the group's name for that attempt and answers 502 instead of 504
    assert outcome(result) == ("upstream.timeout", "lb", "lb"), result.summary
    assert "answered" in result.summary and "itself: no app server answered" in result.summary
    assert result.step("app") is None and result.step("db") is None
    tried = [c.peer for c in result.step("lb").children if c.peer.startswith("app-")]
    assert tried and set(tried) <= {"app-1", "app-2", "app-3"}
    line = next(json.loads(l) for l in inspect.log_text(engine, shop.name, "lb").splitlines()
                if result.trace_id in l and l.startswith("{"))
    assert line["status"] == result.status and set(line["upstream_connect_time"].split(", ")) == {"-"}
    assert all(c.duration_ms > 900 for c in result.step("lb").children if c.peer.startswith("app-"))
    assert result.total_ms < wall_ms


def test_the_page_is_the_web_tier_s_and_its_server_logged_the_trace(engine, shop):
    result = trace(engine, shop, "https://www.shop.test/")
    assert result.ok and result.status == 200, result.summary
    server = result.step("app")
    assert server.node in ("web-1", "web-2") and result.step("db") is None
    assert server.node in result.step("lb").detail and server.source == OBSERVED
    line = next(json.loads(l[l.index("{"):]) for l in inspect.log_text(engine, shop.name, server.node).splitlines()
                if result.trace_id in l)
    # the page's request, served from the file behind it (try_files: $uri is /index.html)
    assert line["request"].startswith("GET / ") and line["path"] == "/index.html" and line["status"] == 200
    assert all(result.trace_id not in inspect.log_text(engine, shop.name, f"app-{i}") for i in (1, 2, 3))


def test_a_stopped_database_is_read_from_the_app_own_record(engine, shop):
    inspect.stop_node(engine, shop.name, "db")
    try:
        result = trace(engine, shop, "https://www.shop.test/api/products")
    finally:
        inspect.start_node(engine, shop.name, "db")
    assert outcome(result) == ("db.unavailable", "db", "db") and result.status == 503, result.summary
    app = result.step("app").node
    line = next(json.loads(l[l.index("{"):]) for l in inspect.log_text(engine, shop.name, app).splitlines()
                if result.trace_id in l)
    assert line["status"] == 503 and line["db_error"] and line["db_error"].split(":")[0] in result.summary


def test_a_path_without_sql_has_no_database_step(engine, shop):
    result = trace(engine, shop, "https://www.shop.test/api/work?ms=1")
    assert result.ok and result.step("app") and result.step("db") is None
    app = result.step("app").node
    line = next(json.loads(l[l.index("{"):]) for l in inspect.log_text(engine, shop.name, app).splitlines()
                if result.trace_id in l)
    assert line["db_queries"] == 0


def test_a_post_creates_an_order_and_the_sql_shows(engine, shop):
    result = trace(engine, shop, "https://www.shop.test/api/orders", data='{"product_id": 2}',
                   headers=["Content-Type: application/json"])
    assert result.ok and result.status == 201, result.summary
    assert result.step("request").title.startswith("POST")
    app, db = result.step("app"), result.step("db")
    assert db is not None and "statement(s)" in db.detail
    code, out = shop.exec("db", "runuser", "-u", "postgres", "--", "psql", "-d", "shop", "-tAc",
                          "select served_by from orders order by id desc limit 1")
    assert code == 0 and out.strip() == app.node


def test_http_redirect_followed_is_two_requests(engine, shop):
    result = trace_url(DockerBackend(engine), shop.lab, "http://www.shop.test/", follow=True)
    assert result.status == 301 and result.step("app") is None and result.outcome["node"] == "lb"
    assert result.redirected_to is not None and result.redirected_to.url == "https://www.shop.test/"
    assert result.redirected_to.status == 200 and result.redirected_to.step("tls") is not None


def run_cli(shop, *args: str, columns: int, lab: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from lab.cli import main; main()", *args,
                           *(("--lab", shop.name) if lab else ())],
                          env=env, text=True,
                          capture_output=True, timeout=120)


def fits(text: str, columns: int) -> list[str]:
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= columns, [line for line in lines if len(line) > columns]
    return lines


def words(lines: list[str]) -> set[str]:
    return {word.strip(":,'()") for line in lines for word in line.split()}


@pytest.mark.parametrize("columns", [80, 120])
def test_firewall_show_and_explain_fit_and_keep_rule_names_and_counters_whole(shop, columns):
    shown = run_cli(shop, "firewall", "show", "fw", columns=columns)
    assert shown.returncode == 0, shown.stderr
    lines = fits(shown.stdout, columns)
    as_json = json.loads(run_cli(shop, "firewall", "show", "fw", "--json", columns=columns).stdout)
    rules = as_json["rules"]
    assert {rule["name"] for rule in rules} <= words(lines)   # every rule name whole, built-in ones too
    # ssh-in only counts what hits port 22 (nothing runs during this test): its counters are stable
    ssh = next(rule for rule in rules if rule["name"] == "ssh-in")
    assert {str(ssh["packets"]), str(ssh["bytes"])} <= words(lines) and {"packets", "bytes"} <= words(lines)
    explained = run_cli(shop, "firewall", "explain", "laptop", "app-1", "8000", "--timeout", "1", columns=columns)
    assert explained.returncode == 0, explained.stdout + explained.stderr
    lines = fits(explained.stdout, columns)
    flat = " ".join(explained.stdout.split())      # a sentence may go on over lines, at its spaces
    assert "default-deny" in words(lines) and "rule 'default-deny' -> " in flat and "confirmed" in flat
    assert "counters that rose: default-deny +" in flat, lines


@pytest.mark.parametrize("columns", [80, 120])
def test_check_fits_and_a_failed_http_check_says_what_curl_said(shop, columns, tmp_path):
    failing = "  - name: nothing serves https on the ssh port\n    http: https://www.shop.test:22/\n"
    topology = tmp_path / "shop.yaml"
    topology.write_text(shop.file.read_text() + failing)
    result = run_cli(shop, "check", str(topology), columns=columns, lab=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = fits(result.stdout, columns)
    assert "lab-status" not in result.stdout
    for check in shop.lab.spec.checks:    # every check's name whole, on one line, marked pass
        assert any(check.name in line and "pass" in line for line in lines), (check.name, lines)
    assert any("FAIL" in line and "nothing serves https on the ssh port" in line for line in lines)
    code, _ = plain_curl(shop, "laptop", "https://www.shop.test:22/")
    assert code == 7 and "no response (curl: (7)" in " ".join(result.stdout.split())   # curl's own words: refused
    assert f"{len(shop.lab.spec.checks)} passed, 1 failed" in result.stdout


@pytest.mark.parametrize("columns", [80, 120])
def test_output_fits_the_terminal_and_keeps_key_words_whole(shop, columns):
    traced = run_cli(shop, "trace", "http://www.shop.test:22/", "-f", str(shop.file), columns=columns)
    assert traced.returncode == 1, traced.stderr
    lines = traced.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= columns
    assert any("rule 'ssh-in' rejects tcp/22" in line for line in lines)
    run_cli(shop, "dig", "www.shop.test", columns=columns)
    cached = run_cli(shop, "dig", "www.shop.test", "--trace", columns=columns)
    assert cached.returncode == 0, cached.stderr
    assert max(len(line) for line in cached.stdout.splitlines()) <= columns
    assert any("laptop's own DNS cache" in line for line in cached.stdout.splitlines()), cached.stdout


def test_usage_errors_exit_2_in_one_line(shop):
    result = CliRunner().invoke(main, ["trace", "https://www.shop.test/", "--from", "nosuch", "--lab", shop.name,
                                       "-f", str(shop.file)])
    assert result.exit_code == 2 and "has no node 'nosuch'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_json_is_versioned_and_html_is_written(engine, shop, tmp_path):
    page = tmp_path / "journey.html"
    result = CliRunner().invoke(main, ["trace", "https://www.shop.test/", "--lab", shop.name, "-f", str(shop.file),
                                       "--json", "--html", str(page)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["schema"] == "lab.trace/2" and data["status"] == 200 and data["outcome"]["ok"]
    assert {step["source"] for step in data["steps"]} == {"observed"}
    assert 'data-source="observed"' in page.read_text()


# --- the request's packets (lab trace --pcap) -------------------------------------------------

TSHARK_FIELDS = ("frame.number", "frame.interface_name", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport",
                 "tcp.flags.syn", "tcp.flags.ack", "tcp.seq_raw", "udp.dstport", "udp.srcport",
                 "ipv6.src", "ipv6.dst")


def read_with_tshark(file) -> dict[int, dict]:
    """Each frame of the file as tshark decodes it (an independent reader of the pcapng)."""
    result = subprocess.run(["tshark", "-r", str(file), "-T", "fields", "-E", "occurrence=f",
                             *(arg for name in TSHARK_FIELDS for arg in ("-e", name))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    frames = {}
    for line in result.stdout.splitlines():
        values = dict(zip(TSHARK_FIELDS, line.split("\t")))
        # ip.src / ip.dst: the packet's addresses in either family (the lab is dual-stack)
        values["family"] = 6 if values.get("ipv6.src") else 4
        values["ip.src"] = values["ip.src"] or values.get("ipv6.src", "")
        values["ip.dst"] = values["ip.dst"] or values.get("ipv6.dst", "")
        frames[int(values["frame.number"])] = values
    return frames


def address(shop, node: str, network: str, family: int = 4) -> str:
    instance = shop.lab.instance(node)
    return str((instance.addresses6 if family == 6 else instance.addresses)[network])


def request_family(frames: dict[int, dict]) -> int:
    """The family of the laptop's connection to the lb, as tshark read it (curl chooses it)."""
    return next(f["family"] for f in frames.values() if f["frame.interface_name"] == "laptop:home"
                and f["tcp.dstport"] == "443")


def capture_helpers(engine, shop) -> list:
    return engine.containers.list(all=True, ignore_removed=True,
                                  filters={"label": [f"lab.name={shop.name}", "lab.role=trace-capture"]})


@pytest.fixture(scope="module")
def traced_pcap(engine, shop, tmp_path_factory):
    if shutil.which("tshark") is None or shutil.which("tcpdump") is None:
        pytest.skip("tshark and tcpdump read the capture here: run scripts/setup.sh to install them")
    file = tmp_path_factory.mktemp("pcap") / "request.pcapng"
    result = trace_url(DockerBackend(engine), shop.lab, API_URL, pcap=file)
    assert result.ok, result.summary
    return result, file, read_with_tshark(file)


def test_the_pcap_holds_the_request_at_every_hop_and_tcpdump_reads_it(engine, shop, traced_pcap):
    result, file, frames = traced_pcap
    listed = subprocess.run(["tcpdump", "-nn", "-r", str(file)], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == len(frames) == result.pcap["packets"] > 0
    names = {f["frame.interface_name"] for f in frames.values()}
    assert names == set(result.pcap["points"])
    assert all(re.fullmatch(r"[a-z0-9-]+:[a-z0-9-]+", name) for name in names), names
    assert {"laptop:home", "home-router:home", "home-router:isp", "isp-router:isp", "isp-router:backbone",
            "fw:backbone", "fw:dmz", "lb:dmz", f"{result.step('app').node}:apps", "db:data"} <= names
    assert capture_helpers(engine, shop) == []


def test_the_syn_is_seen_at_the_laptop_and_source_rewritten_at_isp_router(shop, traced_pcap):
    result, _, frames = traced_pcap
    family = request_family(frames)
    laptop, lb = address(shop, "laptop", "home", family), address(shop, "lb", "dmz", family)
    syns = [f for f in frames.values() if f["tcp.flags.syn"] == "1" and f["tcp.flags.ack"] == "0"
            and f["ip.dst"] == lb and f["tcp.dstport"] == "443"]
    at_laptop = [f for f in syns if f["frame.interface_name"] == "laptop:home" and f["ip.src"] == laptop]
    assert len(at_laptop) == 1, syns
    seq = at_laptop[0]["tcp.seq_raw"]
    at_isp = [f for f in syns if f["frame.interface_name"] == "isp-router:isp" and f["tcp.seq_raw"] == seq]
    # home-router masquerades the home LAN: isp-router sees the SYN from home-router's address
    assert [f["ip.src"] for f in at_isp] == [address(shop, "home-router", "isp", family)]
    assert at_isp[0]["tcp.srcport"] == at_laptop[0]["tcp.srcport"]


def test_the_lb_to_app_connection_is_in_the_file(shop, traced_pcap):
    result, _, frames = traced_pcap
    app = result.step("app").node
    # the lb reaches its upstreams by the addresses in its config, whichever family the client used
    towards_app = [f for f in frames.values() if f["frame.interface_name"] == "lb:dmz"
                   and f["ip.src"] in {address(shop, "lb", "dmz", family) for family in (4, 6)}
                   and f["ip.dst"] in {address(shop, app, "apps", family) for family in (4, 6)}
                   and f["tcp.dstport"] == "8000"]
    assert towards_app
    sql = [f for f in frames.values() if f["frame.interface_name"] == "db:data" and "5432" in
           (f["tcp.srcport"], f["tcp.dstport"])]
    assert sql


def test_each_step_names_packets_that_are_what_it_says(shop, traced_pcap):
    result, _, frames = traced_pcap
    tcp = result.step("tcp").packets
    first = frames[tcp[0]]
    assert (first["frame.interface_name"], first["tcp.flags.syn"], first["tcp.flags.ack"]) == ("laptop:home", "1", "0")
    assert any(frames[n]["tcp.flags.syn"] == "1" and frames[n]["tcp.flags.ack"] == "1" for n in tcp)
    firewall = result.step("firewall")
    assert firewall.packets and all(frames[n]["frame.interface_name"].startswith(f"{firewall.node}:")
                                    and frames[n]["tcp.flags.syn"] == "1" for n in firewall.packets)
    dns = result.step("dns").packets
    assert dns and all("53" in (frames[n]["udp.dstport"], frames[n]["udp.srcport"], frames[n]["tcp.dstport"],
                                frames[n]["tcp.srcport"]) for n in dns)
    for kind, port in (("lb", "8000"), ("app", "8000"), ("db", "5432")):
        step = next(s for s in every_step(result) if s.kind == kind)
        assert step.packets, kind
        assert all(frames[n]["frame.interface_name"].startswith(f"{step.node}:")
                   and port in (frames[n]["tcp.srcport"], frames[n]["tcp.dstport"]) for n in step.packets), kind


def test_the_text_and_json_name_each_steps_packets(shop, tmp_path):
    file = tmp_path / "cli.pcapng"
    result = CliRunner().invoke(main, ["trace", API_URL, "--lab", shop.name, "-f", str(shop.file),
                                       "--json", "--pcap", str(file)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pcap"]["file"] == str(file) and data["pcap"]["packets"] > 0
    bare = [step["kind"] for step in data["steps"] if step["kind"] in ("tcp", "tls", "request", "transfer")
            and not step["packets"]]
    assert bare == [], data["steps"]
    text = CliRunner().invoke(main, ["trace", API_URL, "--lab", shop.name, "-f", str(shop.file),
                                     "--pcap", str(file)], terminal_width=80)
    assert text.exit_code == 0, text.output
    assert re.search(r"^\s+packets \d+", text.output, re.M) and f"wrote {file}" in text.output


def test_ctrl_c_during_a_pcap_trace_leaves_no_capture_helper(engine, shop, tmp_path):
    process = lab_cli("trace", "https://www.shop.test/api/work?ms=5000", "--lab", shop.name, "-f", str(shop.file),
                      "--pcap", str(tmp_path / "never.pcapng"))
    deadline = time.monotonic() + 120
    while len(capture_helpers(engine, shop)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert capture_helpers(engine, shop), "no capture helper was ever seen: nothing to interrupt"
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130 and "Traceback" not in output, output
    assert "interrupted by SIGINT" in output
    assert capture_helpers(engine, shop) == []


def test_a_recording_that_fails_to_start_removes_the_helpers_it_made(engine, shop):
    with pytest.raises(RuntimeFailure, match="no node 'nowhere'"):
        with DockerBackend(engine).record(shop.name, {"laptop": "tcp", "nowhere": "tcp"}):
            pass
    assert capture_helpers(engine, shop) == []


def test_a_trace_whose_client_cannot_record_leaves_no_capture_running(engine, make_lab):
    """The routers' tcpdumps start beside the client's; when the client's cannot (it stopped
    after the trace began), theirs are stopped again, not left recording the lab for ever."""
    lab = make_lab(topology_text("minimal", "it-wire"))
    lab.up()
    engine.containers.get(f"{lab.name}-client").stop(timeout=1)
    with pytest.raises(RuntimeFailure):
        journey._start_wire(DockerBackend(engine), lab.lab, ["client", "router"], "wiretest", 8000)
    code, running = lab.exec("router", "sh", "-c", "pgrep -a tcpdump; ls /tmp | grep lab-trace-")
    assert code != 0 and "tcpdump" not in running and "lab-trace-" not in running, running
