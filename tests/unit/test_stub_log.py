"""A client's DNS cache, read from dnsmasq's own log lines (dnsmasq 2.90, as recorded in a container)."""

from __future__ import annotations

from pathlib import Path

from lab.plan.stub import render_stub_conf
from lab.topology import load_text
from lab.trace.dns import DnsTrace, with_stub
from lab.trace.stub import CACHE, FORWARDED, NOT_ASKED, parse_stub_log, upstream_of_stub

ROOT = Path(__file__).resolve().parents[2]

LOG = """\
Nov 29 07:40:01 dnsmasq[9]: 1 127.0.0.1/41234 query[A] www.shop.test from 127.0.0.1
Nov 29 07:40:01 dnsmasq[9]: 1 127.0.0.1/41234 forwarded www.shop.test to 100.64.0.53
Nov 29 07:40:01 dnsmasq[9]: 2 127.0.0.1/41234 query[AAAA] www.shop.test from 127.0.0.1
Nov 29 07:40:01 dnsmasq[9]: 2 127.0.0.1/41234 forwarded www.shop.test to 100.64.0.53
Nov 29 07:40:01 dnsmasq[9]: 1 127.0.0.1/41234 reply www.shop.test is 198.18.10.10
Nov 29 07:40:01 dnsmasq[9]: 2 127.0.0.1/41234 reply www.shop.test is NODATA-IPv6
"""
CACHED = """\
Nov 29 07:40:09 dnsmasq[9]: 3 127.0.0.1/50000 query[A] www.shop.test from 127.0.0.1
Nov 29 07:40:09 dnsmasq[9]: 3 127.0.0.1/50000 cached www.shop.test is 198.18.10.10
"""


def test_a_forwarded_query_names_the_resolver_and_the_reply():
    answer = parse_stub_log(LOG, "laptop", "www.shop.test")
    assert answer.outcome == FORWARDED and answer.forwarded_to == "100.64.0.53"
    assert answer.answer == ["198.18.10.10"] and not answer.from_cache
    assert answer.lines == ["1 127.0.0.1/41234 query[A] www.shop.test from 127.0.0.1",
                            "1 127.0.0.1/41234 forwarded www.shop.test to 100.64.0.53",
                            "1 127.0.0.1/41234 reply www.shop.test is 198.18.10.10"]


def test_the_last_query_decides_and_a_cached_one_is_from_the_cache():
    answer = parse_stub_log(LOG + CACHED, "laptop", "www.shop.test.")
    assert answer.outcome == CACHE and answer.from_cache and answer.answer == ["198.18.10.10"]
    assert answer.forwarded_to is None


def test_another_name_or_type_is_not_this_lookup():
    assert parse_stub_log(LOG, "laptop", "shop.test").outcome == NOT_ASKED
    assert parse_stub_log(CACHED, "laptop", "www.shop.test", "AAAA").outcome == NOT_ASKED
    assert parse_stub_log("", "laptop", "www.shop.test").lines == []


def _dns(**changes) -> DnsTrace:
    values = dict(name="www.shop.test", type="A", client="laptop", resolver="resolver",
                  resolver_address="100.64.0.53", status="", answer=[], duration_ms=0.4, resolver_ms=None,
                  from_cache=False, steps=[])
    return DnsTrace(**{**values, **changes})


def test_an_answer_from_the_os_cache_is_the_lookup_answer():
    dns = with_stub(_dns(), parse_stub_log(CACHED, "laptop", "www.shop.test"))
    assert dns.from_os_cache and dns.status == "NOERROR"
    assert dns.answer == ["www.shop.test. A 198.18.10.10"]


def test_a_forwarded_lookup_keeps_the_resolver_answer():
    dns = with_stub(_dns(status="NOERROR", answer=["www.shop.test. A 198.18.10.10"], resolver_ms=3.0),
                    parse_stub_log(LOG, "laptop", "www.shop.test"))
    assert not dns.from_os_cache and dns.stub["outcome"] == FORWARDED and dns.resolver_ms == 3.0


def test_the_stub_conf_is_from_the_topology_and_names_its_upstream():
    text = (ROOT / "topology" / "default.yaml").read_text().replace("os_cache: {max_ttl: 300}",
                                                                      "os_cache: {max_ttl: 60, size: 20}")
    lab = load_text(text, "<default>")
    conf = render_stub_conf(lab, lab.instance("laptop"), "100.64.0.53")
    assert "max-cache-ttl=60\n" in conf and "cache-size=20\n" in conf and "listen-address=127.0.0.1\n" in conf
    assert "log-queries=extra\n" in conf and upstream_of_stub(conf) == "100.64.0.53"
