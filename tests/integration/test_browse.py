"""`lab browse` on a real engine: headless Chromium in the laptop's namespace loads the shop from
the default lab (one lab for the module; one cold load and its reload shared by the tests).

What the command says is checked against records it did not read: the servers' own log lines
(by the trace ids the browser reported), the resolver's own query log (unbound's log-queries,
while `lab browse` read the resolver's packets) and the engine's list of containers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab.backends.docker.browser import BROWSER_ROLE
from lab.backends.docker.helpers import LABEL_ROLE
from lab.plan.model import LABEL_LAB

from .conftest import ROOT, running_lab, topology_text

URL = "https://www.shop.test/"


def lab_browse(lab, *args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", "browse", *args, "--lab", lab.name],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


def log_lines(lab, node: str, needle: str) -> list[str]:
    return [line for line in lab.client.containers.get(f"{lab.name}-{node}").logs().decode().splitlines()
            if needle in line]


def resolver_queries(lab, name: str, start: float, end: float) -> list[str]:
    """unbound's own log of the queries it received ('[unix time] unbound[..] info: FROM NAME. A IN')."""
    found = []
    for line in log_lines(lab, "resolver", f" {name}. "):
        stamp, _, rest = line.partition("]")
        if rest.rstrip().endswith(" IN") and start - 1 <= int(stamp.strip("[")) <= end + 1:
            found.append(line)
    return found


def browser_helpers(lab) -> list[str]:
    return [c.name for c in lab.client.containers.list(all=True, ignore_removed=True, filters={
        "label": [f"{LABEL_LAB}={lab.name}", f"{LABEL_ROLE}={BROWSER_ROLE}"]})]


@pytest.fixture(scope="module")
def default_lab(engine, images, tmp_path_factory):
    """The default topology, for this module (the other modules bring up labs on the same subnets,
    one after another: a lab kept for the whole session would overlap theirs). Made from a real
    file, so `lab` commands run against it find its topology as they would a user's."""
    text = topology_text("default", "it-browse")
    file = tmp_path_factory.mktemp("browse-lab") / "default.yaml"
    file.write_text(text)
    with running_lab(engine, text, str(file)) as lab:
        yield lab


@pytest.fixture(scope="module", autouse=True)
def browser_image(default_lab):
    """The browser helper's image, built here when missing (cold: a few minutes on a busy machine),
    so the commands below are timed on their own work, not on a build."""
    return default_lab.backend.build_browser()


def web_in_packets(lab) -> int:
    """The firewall's own count of packets its rule web-in decided (IPv4 and IPv6), read here."""
    code, text = lab.exec("fw", "sh", "-c", "iptables-save -c; ip6tables-save -c")
    assert code == 0, text
    return sum(int(re.match(r"\[(\d+):", line)[1]) for line in text.splitlines()
               if "-A FORWARD" in line and "--comment web-in " in line)


def interface_packets(lab, node: str) -> dict[str, tuple[int, int]]:
    """A node's own interface counters (/proc/net/dev): interface -> (received, sent) packets."""
    code, text = lab.exec(node, "cat", "/proc/net/dev")
    assert code == 0, text
    found = {}
    for line in text.splitlines()[2:]:
        name, _, numbers = line.partition(":")
        fields = numbers.split()
        found[name.strip()] = (int(fields[1]), int(fields[9]))
    return found


def bind_queries(lab, node: str, name: str, start: float, end: float) -> list[str]:
    """A BIND server's own query log lines for name ('29-Nov-2026 12:50:40.746 client ... query:
    NAME IN A ...'), stamped (UTC) within [start, end] (unix seconds)."""
    found = []
    for line in log_lines(lab, node, f"query: {name} IN "):
        stamp = datetime.strptime(" ".join(line.split()[:2]), "%d-%b-%Y %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        if start - 1 <= stamp.timestamp() <= end + 1:
            found.append(line)
    return found


def journey_steps(visit: dict) -> dict[str, dict]:
    return {step["name"]: step for step in visit["journey"]["steps"]}


@pytest.fixture(scope="module")
def loads(default_lab, tmp_path_factory):
    """One cold load and its reload, the laptop's own DNS cache emptied first (so the first load
    asks the resolver): (the JSON report, the HTML report's path, the screenshot's path, and what
    this test read itself around it: the firewall's counter of web-in, the routers' interfaces)."""
    folder = tmp_path_factory.mktemp("browse")
    code, _ = default_lab.exec("laptop", "pkill", "-HUP", "-x", "dnsmasq")
    assert code == 0
    routers = ("home-router", "isp-router")
    before = {"web-in": web_in_packets(default_lab), **{r: interface_packets(default_lab, r) for r in routers}}
    done = lab_browse(default_lab, URL, "--reload", "--json", "--html", str(folder / "report.html"),
                      "--screenshot", str(folder / "page.png"))
    after = {"web-in": web_in_packets(default_lab), **{r: interface_packets(default_lab, r) for r in routers}}
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    return json.loads(done.stdout), folder / "report.html", folder / "page.png", {"before": before, "after": after}


def entries(visit: dict) -> dict[str, dict]:
    return {entry["path"]: entry for entry in visit["entries"]}


def test_a_cold_load_fetches_html_css_js_an_image_and_the_api_over_http2(loads):
    report, html, shot, _ = loads
    first = entries(report["visits"][0])
    assert {first[p]["resource"] for p in first} >= {"Document", "Stylesheet", "Script", "Image", "Fetch"}
    assert all(e["status"] == 200 and e["cache"] == "network" and e["protocol"] == "h2" for e in first.values())
    assert shot.read_bytes().startswith(b"\x89PNG") and "data:image/png;base64," in html.read_text()


def test_each_request_is_linked_to_the_servers_own_log_line(default_lab, loads):
    first = entries(loads[0]["visits"][0])
    for path, entry in first.items():
        record = entry["lab"]
        assert record["lb"] == "lb" and record["server"], path
        # the server named holds the browser's trace id in its own log, and says it answered
        line = json.loads(log_lines(default_lab, record["server"], entry["trace_id"])[-1])
        assert line["status"] == 200 and line.get("served_by", line.get("node")) == record["server"]
    api = first["/api/products"]["lab"]
    assert api["server"].startswith("app-") and api["database"] == "db"
    line = json.loads(log_lines(default_lab, api["server"], first["/api/products"]["trace_id"])[-1])
    assert line["db_queries"] >= 1 and api["db_ms"] == line["db_ms"] and api["db_ms"] > 0


def test_the_reload_uses_the_browser_cache_and_the_os_cache_and_asks_the_resolver_nothing(default_lab, loads):
    cold, warm = loads[0]["visits"]
    statics = ("/static/shop.css", "/static/shop.js", "/static/logo.svg")
    for path in statics:
        assert entries(warm)[path]["cache"] in ("disk cache", "memory cache", "revalidated (304)"), path
    page = entries(warm)["/"]
    assert page["cache"] == "revalidated (304)" and page["lab"]["server_status"] == 304
    assert json.loads(log_lines(default_lab, page["lab"]["server"], page["trace_id"])[-1])["status"] == 304
    # the name: asked of the resolver on the cold load, from the laptop's cache on the reload
    assert cold["name"]["os_cache"] == "forwarded" and warm["name"]["os_cache"] == "cache"
    assert warm["name"]["resolver_queries"] == 0
    # ... as the resolver's own log tells it, independently of the packets lab browse read
    assert resolver_queries(default_lab, "www.shop.test", cold["wall_start"], cold["wall_end"])
    assert resolver_queries(default_lab, "www.shop.test", warm["wall_start"], warm["wall_end"]) == []


def test_the_cold_load_observes_13_of_13_steps_each_checked_against_the_nodes_own_records(default_lab, loads):
    report, _, _, around = loads
    cold = report["visits"][0]
    steps = journey_steps(cold)
    assert [s["name"] for s in cold["journey"]["steps"]] == [
        "browser cache", "OS cache", "resolver cache", "root", "TLD", "authoritative", "routers", "firewall",
        "TCP", "TLS", "load balancer", "web/app server", "database"]
    assert cold["journey"]["observed"] == 13 == sum(s["source"] == "observed" for s in steps.values())
    assert cold["journey"]["summary"] == "journey: 13 of 13 steps observed"
    # root, TLD, authoritative: each server's own query log holds a query in the cold load
    start, end = cold["wall_start"], cold["wall_end"]
    for role, node, name in (("root", "root-1", None), ("TLD", "tld-test", None),
                             ("authoritative", "ns-shop", "www.shop.test")):
        assert steps[role]["nodes"] == [node], steps[role]
        if name:
            assert bind_queries(default_lab, node, name, start, end), f"{node} logged no query for {name}"
        else:
            assert any(start - 1 <= datetime.strptime(" ".join(line.split()[:2]), "%d-%b-%Y %H:%M:%S.%f")
                       .replace(tzinfo=timezone.utc).timestamp() <= end + 1
                       for line in log_lines(default_lab, node, " query: ")), f"{node} logged no query"
    # the firewall: the rule the journey names rose by what the test's own reading of it says
    said = re.search(r"rule web-in \(allow\) decided: its counter rose by (\d+)", steps["firewall"]["said"])
    assert steps["firewall"]["nodes"] == ["fw"] and said
    assert int(said[1]) == around["after"]["web-in"] - around["before"]["web-in"] > 0
    # the routers: each one named, in the order the SYN met them, counted packets in and out
    # on the interfaces the journey says the SYN crossed
    assert steps["routers"]["nodes"] == ["home-router", "isp-router"]
    for router, inward, outward in re.findall(r"(\S+) \((\w+) -> (\w+)", steps["routers"]["said"]):
        before, after = around["before"][router], around["after"][router]
        assert after[inward][0] > before[inward][0] and after[outward][1] > before[outward][1], router
    assert steps["TCP"]["ms"] is not None and steps["TLS"]["ms"] is not None
    assert steps["load balancer"]["nodes"] == ["lb"] and steps["database"]["nodes"] == ["db"]


def test_the_reload_says_root_tld_and_authoritative_were_not_asked_as_the_resolvers_packets_show(default_lab, loads):
    warm = loads[0]["visits"][1]
    steps = journey_steps(warm)
    for role in ("resolver cache", "root", "TLD", "authoritative"):
        assert steps[role]["said"] == "not asked: answered from the OS cache" and steps[role]["source"] == "observed"
    assert warm["journey"]["summary"] == "journey: 13 of 13 steps observed"
    assert warm["name"]["resolver_queries"] == 0   # the resolver's packets, as lab browse read them
    # independently: neither the resolver's nor the authoritative server's own log has the name
    assert resolver_queries(default_lab, "www.shop.test", warm["wall_start"], warm["wall_end"]) == []
    assert bind_queries(default_lab, "ns-shop", "www.shop.test", warm["wall_start"], warm["wall_end"]) == []


def test_the_text_shows_each_loads_journey_at_80_columns(default_lab):
    done = lab_browse(default_lab, URL)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "the journey of load 1, step by step:" in lines
    assert "journey: 13 of 13 steps observed" in lines
    assert any(line.startswith(" 6 authoritative [ns-shop]:") for line in lines)


def test_a_stopped_web_tier_breaks_the_page_but_not_the_api_and_the_report_says_where(default_lab):
    backend = default_lab.backend
    web = ["web-1", "web-2"]
    for node in web:
        backend.stop(default_lab.name, node)
    try:
        broken = lab_browse(default_lab, URL, "--json")
        assert broken.returncode == 1, broken.stderr
        page = entries(json.loads(broken.stdout)["visits"][0])["/"]
        assert page["status"] in (502, 504) and page["lab"]["failed_at"] in web
        assert set(page["lab"]["chosen"]) <= set(web) and page["lab"]["chosen"]
        lb_line = json.loads(log_lines(default_lab, "lb", page["trace_id"])[-1])
        assert lb_line["status"] == page["status"]
        assert all(s in ("502", "504") for s in lb_line["upstream_status"].split(", "))
        text = lab_browse(default_lab, URL)
        # nginx's error page names no icon: the browser asks /favicon.ico too, the app says 404
        # (the lb now holds both servers down after their failures: it names the pool, which is them)
        said = " ".join(text.stdout.split("request(s) failed:")[-1].split())   # lines unwrapped
        assert text.returncode == 1 and re.search(r"GET / 50\d: it failed at [^;]*;[^)]*web-", said), said
        # the API, fetched by itself, still answers from an app server
        api = lab_browse(default_lab, URL + "api/products", "--json")
        assert api.returncode == 0, api.stderr
        record = entries(json.loads(api.stdout)["visits"][0])["/api/products"]
        assert record["status"] == 200 and record["lab"]["server"].startswith("app-")
        # a stopped node has no network for a browser: said, exit 1
        stopped = lab_browse(default_lab, URL, "--from", "web-1")
        assert stopped.returncode == 1 and "node 'web-1' is exited" in stopped.stderr
    finally:
        for node in web:
            backend.start(default_lab.name, node)
    assert browser_helpers(default_lab) == []


def test_a_name_that_does_not_resolve_is_said_with_the_resolvers_answer(default_lab):
    done = lab_browse(default_lab, "https://nothing.shop.test/", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    page = report["visits"][0]["entries"][0]
    assert page["error"] == "net::ERR_NAME_NOT_RESOLVED" and report["ok"] is False
    assert [line for line in log_lines(default_lab, "resolver", "nothing.shop.test. A IN NXDOMAIN")]


def test_bad_input_is_exit_2_and_names_the_fix(default_lab):
    unknown = lab_browse(default_lab, URL, "--from", "nobody")
    assert unknown.returncode == 2 and "has no node 'nobody'" in unknown.stderr and "laptop" in unknown.stderr
    bad = lab_browse(default_lab, "ftp://www.shop.test/")
    assert bad.returncode == 2 and "not an http:// or https:// URL" in bad.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr


def test_a_missing_browser_image_folder_is_one_sentence_and_exit_1(default_lab, tmp_path):
    services = tmp_path / "services"
    shutil.copytree(ROOT / "services", services, ignore=shutil.ignore_patterns("browser"))
    done = lab_browse(default_lab, URL, env={"LAB_SERVICES_DIR": str(services)})
    assert done.returncode == 1 and "browser/Dockerfile is missing" in done.stderr
    assert "Traceback" not in done.stderr and browser_helpers(default_lab) == []


def test_ctrl_c_removes_the_browser_helper(default_lab):
    process = subprocess.Popen([sys.executable, "-m", "lab", "browse", URL, "--reload", "--lab", default_lab.name],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not browser_helpers(default_lab) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert browser_helpers(default_lab), "the helper never appeared"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert browser_helpers(default_lab) == []


def test_a_stopped_authoritative_server_is_where_the_journey_broke(default_lab):
    backend = default_lab.backend
    backend.stop(default_lab.name, "ns-shop")
    try:
        state = default_lab.client.containers.get(f"{default_lab.name}-ns-shop").status
        assert state == "exited"   # the engine's word that it is stopped
        done = lab_browse(default_lab, URL, "--json")
        assert done.returncode == 1, done.stderr
        visit = json.loads(done.stdout)["visits"][0]
        steps = journey_steps(visit)
        assert visit["entries"][0]["error"] == "net::ERR_NAME_NOT_RESOLVED"
        assert visit["journey"]["broken"] == "authoritative" and steps["authoritative"]["nodes"] == ["ns-shop"]
        assert "no reply" in steps["authoritative"]["said"]
        assert steps["root"]["source"] == steps["TLD"]["source"] == "observed" and not steps["TLD"]["broken"]
        assert steps["TCP"]["source"] == "not reached" and visit["journey"]["observed"] < 13
        assert visit["journey"]["summary"].startswith(
            f"journey: {visit['journey']['observed']} of 13 steps observed; it broke at authoritative")
        # independently: the resolver's own log gives up on the zone's servers (it may say so
        # after the browser did: it keeps trying them for a while)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            failed = [line for line in log_lines(default_lab, "resolver", "SERVFAIL <www.shop.test.")
                      if int(line.split("]")[0].strip("[")) >= visit["wall_start"] - 1]
            if failed:
                break
            time.sleep(0.5)
        assert failed and "at zone shop.test." in failed[-1], "the resolver never said the zone's servers failed"
    finally:
        backend.start(default_lab.name, "ns-shop")


def test_a_stopped_firewall_breaks_the_journey_at_the_router_before_it(default_lab):
    backend = default_lab.backend
    fw = default_lab.lab.instance("fw")
    backend.stop(default_lab.name, "fw")
    try:
        assert default_lab.client.containers.get(f"{default_lab.name}-fw").status == "exited"
        done = lab_browse(default_lab, URL, "--json")
        assert done.returncode == 1, done.stderr
        visit = json.loads(done.stdout)["visits"][0]
        steps = journey_steps(visit)
        assert steps["firewall"]["nodes"] == ["fw"] and "is not running" in steps["firewall"]["said"]
        assert steps["authoritative"]["source"] == "observed" and not steps["authoritative"]["broken"]
        assert steps["TCP"]["broken"] and steps["load balancer"]["source"] == "not reached"
        # Where it broke depends on isp-router's neighbour table: with no link address for fw
        # left, the SYN never leaves it; with one still cached from before the stop, the SYN
        # leaves toward the stopped fw, and the journey breaks at the firewall.
        if visit["journey"]["broken"] == "routers":
            assert "isp-router: the SYN arrived and never left it" in steps["routers"]["said"]
            # independently: isp-router itself could not find fw on the backbone
            code, text = default_lab.exec("isp-router", "sh", "-c", "ip neigh; ip -6 neigh")
            assert code == 0
            fw_addresses = {str(a) for a in fw.all_addresses()}
            states = {line.split()[0]: line.split()[-1] for line in text.splitlines() if line.strip()}
            assert {states.get(a) for a in fw_addresses if a in states} & {"FAILED", "INCOMPLETE"}, text
        else:
            assert visit["journey"]["broken"] == "firewall", visit["journey"]
            assert "isp-router (" in steps["routers"]["said"] and not steps["routers"]["broken"]
    finally:
        backend.start(default_lab.name, "fw")
