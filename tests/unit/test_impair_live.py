"""Impairments read back from the kernel (tc -s qdisc show), compared with the topology's, and
what a trace says about the ones on its path (pure: recorded output in, words and figures out)."""

from __future__ import annotations

from lab.impair import Impairment
from lab.impair_live import Shaping, compare, parse_shaping
from lab.topology import load_text
from lab.trace.model import Step, Trace
from lab.trace.shaping import DOWN, UP, annotate, direction, throughput_bps
from lab.trace.web import CurlResult

# Recorded in a router of the default lab: a tbf set by `lab impair`, a netem by hand, lo untouched.
OUTPUT = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
21082: eth0    inet 100.64.10.1/24 brd 100.64.10.255 scope global eth0\\       valid_lft forever
21096: eth1    inet 100.64.0.2/24 brd 100.64.0.255 scope global eth1\\       valid_lft forever
--- qdiscs
qdisc noqueue 0: dev lo root refcnt 2 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
qdisc tbf 8001: dev eth0 root refcnt 2 rate 4Mbit burst 5000b lat 200ms 
 Sent 950123 bytes 700 pkt (dropped 0, overlimits 120 requeues 0) 
 backlog 0b 0p requeues 0
qdisc netem 8002: dev eth1 root refcnt 2 limit 1000 delay 50ms
 Sent 42 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) 
"""
NETWORKS = {"100.64.10.1": "home", "100.64.0.2": "isp"}


def test_each_shaped_interface_is_read_with_its_network_and_values():
    home, isp = parse_shaping("home-router", OUTPUT, NETWORKS)
    assert (home.link, home.interface, home.rate_bps, home.delay_ms, home.sent_bytes) == \
        ("home-router:home", "eth0", 4e6, None, 950123)
    assert home.qdiscs == ["tbf rate 4Mbit burst 5000b lat 200ms"]
    assert (isp.link, isp.rate_bps, isp.delay_ms) == ("home-router:isp", None, 50.0)


def test_a_node_without_impairments_has_none():
    plain = OUTPUT.split("qdisc tbf")[0]
    assert parse_shaping("home-router", plain, NETWORKS) == []


def test_the_kernel_and_the_topology_agree_or_the_difference_is_said():
    observed = parse_shaping("home-router", OUTPUT, NETWORKS)
    told = {s.link: s for s in compare(observed, {"home-router:home": Impairment(rate="4mbit"),
                                                  "laptop:home": Impairment(rate="2mbit", delay="20ms")})}
    assert told["home-router:home"].differs == "" and told["home-router:home"].expected == "rate 4mbit"
    assert "set at run time" in told["home-router:isp"].differs
    missing = told["laptop:home"]
    assert "rate none in the kernel, 2mbit declared" in missing.differs
    assert "delay none (no netem qdisc) in the kernel, 20ms declared" in missing.differs


def test_a_delay_missing_where_the_kernel_has_no_netem_is_said_to_be_that():
    told = compare([], {"laptop:home": Impairment(delay="20ms")}, netem_available=lambda: False)
    assert told[0].differs == "delay 20ms declared, not applied: this kernel has no netem"


def test_a_changed_rate_is_a_difference():
    observed = parse_shaping("home-router", OUTPUT, NETWORKS)
    told = compare(observed, {"home-router:home": Impairment(rate="3mbit")})
    assert "rate 4 Mbit/s in the kernel, 3mbit declared" in told[0].differs


LAB = load_text("""
name: t
networks:
  home: {subnet: 100.64.10.0/24}
  dmz: {subnet: 198.18.10.0/24}
nodes:
  laptop: {kind: client, networks: {home: 100.64.10.10}}
  router: {kind: router, networks: {home: 100.64.10.1, dmz: 198.18.10.1}}
  web: {kind: web, networks: {dmz: 198.18.10.20}}
""", "<test>")


def test_a_qdisc_facing_the_server_shapes_the_upload_one_facing_the_client_the_download():
    crossed = ["laptop", "router", "web"]
    assert direction(LAB, crossed, Shaping("laptop", "home", "eth0")) == UP
    assert direction(LAB, crossed, Shaping("router", "dmz", "eth1")) == UP
    assert direction(LAB, crossed, Shaping("router", "home", "eth0")) == DOWN
    assert direction(LAB, crossed, Shaping("web", "dmz", "eth0")) == DOWN


def curl(**timings) -> CurlResult:
    return CurlResult(0, timings)


def test_throughput_comes_from_curls_counts_and_times_less_the_servers_time():
    up = throughput_bps(curl(size_upload=100_000, time_pretransfer=0.1, time_total=1.0), True, server_ms=100)
    assert up == (1_000_000.0, 100_000.0, 0.8)
    down = throughput_bps(curl(size_download=50_000, time_starttransfer=0.5, time_total=0.9), False)
    assert round(down[0]) == 1_000_000
    assert throughput_bps(curl(size_upload=0), True) is None


def test_the_trace_says_the_rate_it_met_and_the_delay_beside_the_handshake():
    trace = Trace("https://x/", "t", "laptop", True, 1000, 200, "",
                  steps=[Step("tcp", "tcp", "laptop", 0, 102.0), Step("request", "request", "laptop", 102, 900)])
    shaping = [Shaping("laptop", "home", "eth0", ["tbf rate 1Mbit"], rate_bps=1e6),
               Shaping("router", "home", "eth0", ["netem delay 50ms"], delay_ms=50.0)]
    annotate(trace, LAB, ["laptop", "router", "web"], shaping,
             curl(size_upload=100_000, time_pretransfer=0.1, time_total=0.95), server_ms=50)
    assert "TCP handshake 102 ms; a 50 ms delay is set on router:home (observed qdisc) — about 2.0x" \
        in trace.step("tcp").detail
    assert "upload of 100000 bytes in 800 ms: 1 Mbit/s, 100% of the 1 Mbit/s limit set on laptop:home" \
        in trace.step("request").detail
    assert [i["link"] for i in trace.impairments] == ["laptop:home", "router:home"]
    assert trace.impairments[0]["measured_bps"] == 1_000_000


def test_a_transfer_too_small_to_feel_the_limit_claims_no_speed():
    trace = Trace("https://x/", "t", "laptop", True, 10, 200, "",
                  steps=[Step("transfer", "transfer", "laptop", 9, 1)])
    annotate(trace, LAB, ["laptop", "router", "web"], [Shaping("web", "dmz", "eth0", ["tbf"], rate_bps=5e6)],
             curl(size_download=196, time_starttransfer=0.009, time_total=0.0094))
    assert "196 bytes are too few to measure against it" in trace.step("transfer").detail
    assert "measured_bps" not in trace.impairments[0]
