"""`lab impair` on a running lab: a rate cap that really caps, netem detected, no helper left."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from lab.errors import RuntimeFailure
from lab.plan.model import LABEL_LAB
from lab.impair import NETEM_MISSING, Impairment
from lab.trace.journey import trace_url
from lab.trace.web import RequestOptions

from .conftest import running_lab, topology_text

BODY_BYTES = 900_000      # under nginx's 1 MB body limit: the whole body is read
UPLOAD = ("sh", "-c", f"head -c {BODY_BYTES} /dev/zero > /tmp/body && curl -sk -o /dev/null "
          "-w '%{speed_upload} %{time_connect}' --data-binary @/tmp/body https://www.shop.test/api/orders")


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", "it-imp")) as lab:
        yield lab


def upload(shop) -> tuple[float, float]:
    code, output = shop.exec("laptop", *UPLOAD)
    assert code == 0, output
    speed, connect = output.split()
    return float(speed), float(connect)


def tbf_bytes_sent(shop) -> int:
    """What the kernel's tbf on the laptop's interface counted (read inside the node, no privilege)."""
    _, text = shop.exec("laptop", "tc", "-s", "qdisc", "show", "dev", "eth0")
    match = re.search(r"qdisc tbf .*?Sent (\d+) bytes", text, re.S)
    return int(match.group(1)) if match else 0


def test_a_rate_limit_caps_a_transfer_within_15_percent(shop, engine):
    free, _ = upload(shop)
    applied = shop.backend.impair(shop.name, "laptop", "home", Impairment(rate="4mbit"))
    try:
        assert any("tbf" in q and "rate 4Mbit" in q for q in applied.qdiscs), applied.qdiscs
        capped, _ = upload(shop)
        limit = 4_000_000 / 8
        assert 0.85 * limit <= capped <= 1.15 * limit, (capped, limit)
        assert free > 3 * capped            # the cap, not the lab, set the pace
        assert tbf_bytes_sent(shop) >= BODY_BYTES
    finally:
        cleared = shop.backend.impair(shop.name, "laptop", "home", Impairment())
    assert not any("tbf" in q for q in cleared.qdiscs)


# Under the 128 KiB a single argument may hold (curl --data-raw): 1 s of upload at 1 Mbit/s.
TRACE_BODY = "x" * 120_000


def test_a_trace_reports_the_rate_limit_it_met_within_15_percent(shop, engine):
    applied = shop.backend.impair(shop.name, "laptop", "home", Impairment(rate="1mbit"))
    try:
        assert any("rate 1Mbit" in q for q in applied.qdiscs), applied.qdiscs
        before = tbf_bytes_sent(shop)
        result = trace_url(shop.backend, shop.lab, "https://www.shop.test/api/orders", None,
                           RequestOptions(data=TRACE_BODY))
        counted = tbf_bytes_sent(shop) - before
    finally:
        shop.backend.impair(shop.name, "laptop", "home", Impairment())
    met = next(i for i in result.impairments if i["link"] == "laptop:home")
    assert met["rate_bps"] == 1_000_000 and met["direction"] == "toward the server"
    assert 0.85 * 1_000_000 <= met["measured_bps"] <= 1.15 * 1_000_000, met
    assert counted >= len(TRACE_BODY)      # the kernel's own tbf counter: the upload went through it
    assert "of the 1 Mbit/s limit set on laptop:home (observed qdisc)" in result.step("request").detail


def test_a_trace_without_impairments_says_none(shop, engine):
    result = trace_url(shop.backend, shop.lab, "https://www.shop.test/api/products")
    assert result.ok and result.impairments == []
    assert "limit" not in result.step("request").detail


def test_a_trace_reports_the_delay_it_met_or_netem_missing_is_said(shop, engine):
    if not shop.backend.netem_available(shop.name):
        pytest.skip(f"delay cannot be traced here: {NETEM_MISSING}")
    shop.backend.impair(shop.name, "laptop", "home", Impairment(delay="50ms"))
    try:
        result = trace_url(shop.backend, shop.lab, "https://www.shop.test/api/products")
    finally:
        shop.backend.impair(shop.name, "laptop", "home", Impairment())
    tcp = result.step("tcp")
    assert tcp.duration_ms >= 50 and "a 50 ms delay is set on laptop:home (observed qdisc)" in tcp.detail


def test_delay_shows_in_the_tcp_handshake_or_is_refused_in_one_sentence(shop, engine):
    if not shop.backend.netem_available(shop.name):
        with pytest.raises(RuntimeFailure) as caught:
            shop.backend.impair(shop.name, "laptop", "home", Impairment(delay="50ms"))
        assert NETEM_MISSING in str(caught.value)
        pytest.skip(f"delay cannot be measured here: {NETEM_MISSING}")
    shop.backend.impair(shop.name, "laptop", "home", Impairment(delay="50ms"))
    try:
        _, connect = upload(shop)
        assert connect >= 0.05
    finally:
        shop.backend.impair(shop.name, "laptop", "home", Impairment())


@pytest.mark.parametrize("args, words", [
    (["--rate", "fast"], "--rate fast"),
    (["--loss", "lots"], "--loss lots"),
    (["--jitter", "5ms"], "--jitter needs --delay"),
])
def test_values_tc_would_not_understand_are_usage_errors(shop, args, words):
    result = subprocess.run([sys.executable, "-m", "lab", "impair", "--lab", shop.name, "laptop", "home", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_no_helper_is_left(shop, engine):
    shop.backend.impair(shop.name, "laptop", "home", None)
    left = engine.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={shop.name}", "lab.role=impair"]})
    assert left == []


def qdiscs(shop, node: str, network_address_prefix: str) -> str:
    """The node's qdiscs on the interface holding its address on a network, read inside it (no privilege)."""
    _, text = shop.exec(node, "sh", "-c", f"dev=$(ip -o -4 addr show | awk 'index($4, \"{network_address_prefix}\") == 1"
                        " {print $2; exit}'); tc qdisc show dev \"$dev\"")
    return text


def status_impairments(shop, file=None) -> dict[str, dict]:
    """`lab status --json`'s impaired links, by node:network."""
    result = subprocess.run([sys.executable, "-m", "lab", "status", "--lab", shop.name, "--json",
                             *(["-f", str(file)] if file else [])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {f"{i['node']}:{i['network']}": i for i in json.loads(result.stdout)["impairments"]}


def test_status_shows_a_link_impaired_at_run_time_as_the_kernel_holds_it(shop):
    shop.backend.impair(shop.name, "laptop", "home", Impairment(rate="2mbit"))
    try:
        seen = status_impairments(shop)
        text = subprocess.run([sys.executable, "-m", "lab", "status", "--lab", shop.name], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    finally:
        shop.backend.impair(shop.name, "laptop", "home", Impairment())
    assert seen["laptop:home"]["rate_bps"] == 2_000_000   # this lab was made from text: nothing to compare with
    assert "laptop:home (eth0): tbf rate 2Mbit" in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    assert "laptop:home" not in status_impairments(shop)      # cleared: the kernel holds nothing now


def test_impair_in_the_topology_is_applied_by_lab_up_and_cleared_when_removed(shop, tmp_path):
    """`impair:` on the home network shapes both ends of it (laptop and home-router), seen in each
    node's own qdiscs; taking it out of the file and running `lab up` again removes it."""
    plain = topology_text("default", "it-imp")
    home_prefix = plain.split("home:", 1)[1].split("subnet:", 1)[1].split()[0].rsplit(".", 1)[0] + "."
    impaired = plain.replace("the laptop's home LAN}", "the laptop's home LAN, impair: {rate: 3mbit, delay: 20ms}}")
    assert impaired != plain
    topology = tmp_path / "shop.yaml"
    topology.write_text(impaired)
    up = subprocess.run([sys.executable, "-m", "lab", "up", str(topology)], capture_output=True, text=True,
                        timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    for node in ("laptop", "home-router"):
        assert "tbf" in qdiscs(shop, node, home_prefix) and "rate 3Mbit" in qdiscs(shop, node, home_prefix)
        assert f"impaired {node}:home" in up.stdout
    netem = shop.backend.netem_available(shop.name)
    seen = status_impairments(shop, topology)
    assert seen["laptop:home"]["rate_bps"] == 3_000_000 and seen["laptop:home"]["expected"] == "rate 3mbit delay 20ms"
    assert seen["laptop:home"]["differs"] == ("" if netem else "delay 20ms declared, not applied: this kernel has no netem")
    # someone changes the router's qdisc by hand: status says so, from the kernel, not the file
    _, device = shop.exec("home-router", "sh", "-c", f"ip -o -4 addr show | awk 'index($4, \"{home_prefix}\") == 1"
                          " {print $2; exit}'")
    device = device.strip()
    code, said = shop.exec("home-router", "tc", "qdisc", "replace", "dev", device, "root", "tbf", "rate", "5mbit",
                           "burst", "5000", "latency", "200ms")
    assert code == 0, said
    assert "rate 5Mbit" in qdiscs(shop, "home-router", home_prefix)
    changed = status_impairments(shop, topology)["home-router:home"]
    assert changed["rate_bps"] == 5_000_000 and "rate 5 Mbit/s in the kernel, 3mbit declared" in changed["differs"]
    assert ("netem" in qdiscs(shop, "laptop", home_prefix)) == netem
    said = " ".join(up.stderr.split())                     # wrapped at the terminal's width
    assert (" ".join(NETEM_MISSING.split()) in said) == (not netem)   # one sentence where it cannot work
    topology.write_text(plain)
    again = subprocess.run([sys.executable, "-m", "lab", "up", str(topology)], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cleared  laptop:home" in again.stdout
    for node in ("laptop", "home-router"):
        assert "tbf" not in qdiscs(shop, node, home_prefix)
