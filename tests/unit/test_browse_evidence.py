"""`lab browse`'s reading of its evidence, replayed from a real recording (tests/fixtures/browse/):
the default lab (shifted, as tests/fixtures/browse/topology.yaml) loaded https://www.shop.test/
twice, the laptop's DNS cache emptied first. No engine, no browser."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab.browse.evidence import (CACHE, FORWARDED, NOT_ASKED, OBSERVED, lab_evidence, name_lookups,
                                 reached_the_lab)
from lab.browse.har import DISK, MEMORY, NETWORK, REVALIDATED, Visit
from lab.browse.render import render
from lab.browse.report import to_html
from lab.browse.run import PageRecording, interpret
from lab.topology import load_topology

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "browse"


@pytest.fixture(scope="module")
def recording() -> PageRecording:
    return PageRecording(**json.loads((FIXTURES / "shop-reload.json").read_text()))


@pytest.fixture(scope="module")
def result(recording):
    return interpret(recording, load_topology(FIXTURES / "topology.yaml"))


def _by_path(visit: Visit) -> dict:
    return {e.path: e for e in visit.entries}


def test_the_first_load_fetches_the_page_its_files_and_the_api_over_http2(result):
    first = _by_path(result.visits[0])
    kinds = {path: e.resource for path, e in first.items()}
    assert kinds == {"/": "Document", "/static/shop.css": "Stylesheet", "/static/shop.js": "Script",
                     "/static/logo.svg": "Image", "/api/products": "Fetch"}
    assert all(e.cache == NETWORK and e.status == 200 and e.protocol == "h2" for e in first.values())
    assert [e.reused for e in result.visits[0].entries].count(False) == 1   # one connection, multiplexed


def test_each_sent_request_is_found_in_the_lbs_log_and_its_servers(result, recording):
    for entry in result.visits[0].entries:
        found = result.evidence[entry.trace_id]
        assert found.lb == "lb" and found.server == entry.served_by   # the server's own header agrees
        assert entry.trace_id in recording.logs[found.server]          # its own line holds the id
        assert found.chosen[-1] == found.server
    api = result.evidence[_by_path(result.visits[0])["/api/products"].trace_id]
    assert api.server.startswith("app-") and api.database == "db" and api.db_queries >= 1 and api.db_ms > 0
    line = next(json.loads(l) for l in recording.logs[api.server].splitlines() if api.trace_id in l)
    assert line["db_ms"] == api.db_ms


def test_the_reload_takes_static_files_from_the_browser_cache_and_revalidates_the_page(result):
    first, second = _by_path(result.visits[0]), _by_path(result.visits[1])
    for path in ("/static/shop.css", "/static/shop.js", "/static/logo.svg"):
        assert second[path].cache in (DISK, MEMORY) and not reached_the_lab(second[path])
        # the stored response's headers, the first load's trace id among them: not a new request
        assert second[path].trace_id == first[path].trace_id
    assert second["/"].cache == REVALIDATED and second["/"].status == 304
    assert result.evidence[second["/"].trace_id].server_status == 304   # the web server's own line


def test_the_name_came_from_the_resolver_first_then_from_the_os_cache(result, recording):
    first, second = result.names
    assert (first.os_cache, second.os_cache) == (FORWARDED, CACHE)
    assert first.resolver_queries == 1 and second.resolver_queries == 0
    assert "no new query for www.shop.test at resolver" in [c.text for c in second.claims]
    assert all(c.source == OBSERVED for c in first.claims + second.claims)


def test_an_upstream_that_never_answered_is_named_from_the_lbs_log():
    line = ('{"status":504,"upstream_addr":"198.18.60.21:80, 198.18.60.22:80","upstream_status":"504, 504",'
            '"upstream_connect_time":"-, -","upstream_response_time":"1.001, 1.000",'
            '"traceparent":"00-' + "a" * 32 + '-0000000000000000-01"}')
    found = lab_evidence("a" * 32, "lb", line, lambda node: "", {"198.18.60.21": "web-1", "198.18.60.22": "web-2"},
                         lambda node: None)
    assert found.lb_status == 504 and found.chosen == ["web-1", "web-2"] and found.server is None
    assert found.failed_at == "web-2"
    assert any("web-1: connect timed out" in c.text for c in found.claims)


def test_a_log_without_the_trace_id_is_said_not_guessed():
    found = lab_evidence("b" * 32, "lb", "", lambda node: "", {}, lambda node: None)
    assert found.lb is None and found.claims[0].text == "lb's log has no line with this trace id"


def test_a_node_without_a_dns_cache_says_nothing_about_one(result):
    lookups = name_lookups(result.visits, "www.shop.test", None, None, "resolver", "100.64.40.53", [])
    assert all(n.os_cache == NOT_ASKED and len(n.claims) == 1 for n in lookups)


def test_the_text_fits_80_columns_and_the_html_holds_waterfalls_and_the_screenshot(result):
    lines = [line.plain for line in render(result, 80)]
    assert max(len(line) for line in lines) <= 80
    assert lines[-1] == "the page loaded; every request answered"
    page = to_html(result)
    assert page.count('class="waterfall"') == 2 and "data:image/png;base64," in page
    assert result.screenshot.startswith(b"\x89PNG")


def test_a_pool_with_no_server_left_is_named_with_its_servers_from_the_topology():
    line = '{"status":502,"upstream_addr":"lab_web","upstream_status":"502","traceparent":"00-' + "c" * 32 + '-x"}'
    found = lab_evidence("c" * 32, "lb", line, lambda node: "", {}, lambda node: None,
                         {"lab_web": ["web-1", "web-2"]})
    assert found.failed_at == "lb" and found.pool == "lab_web" and found.pool_members == ["web-1", "web-2"]
    assert [c.source for c in found.claims] == [OBSERVED, "derived"]
    assert "no server left to try" in found.claims[0].text


def test_a_load_that_looked_the_name_up_twice_says_each_lookup_in_order():
    start = datetime(2026, 11, 29, 10, 51, 0, tzinfo=timezone.utc).timestamp()
    log = ("Nov 29 10:51:00 dnsmasq[68]: 5 127.0.0.1/1 query[A] www.shop.test from 127.0.0.1\n"
           "Nov 29 10:51:00 dnsmasq[68]: 5 127.0.0.1/1 forwarded www.shop.test to 100.64.0.53\n"
           "Nov 29 10:51:00 dnsmasq[68]: 6 127.0.0.1/2 query[A] www.shop.test from 127.0.0.1\n"
           "Nov 29 10:51:00 dnsmasq[68]: 6 127.0.0.1/2 cached www.shop.test is 198.18.10.10\n")
    (lookup,) = name_lookups([Visit(1, "http://www.shop.test/", wall_start=start)], "www.shop.test", "laptop", log,
                             "resolver", "100.64.0.53", [])
    assert lookup.os_cache == FORWARDED and lookup.stub_outcomes == [FORWARDED, CACHE]
    assert "asked 2 times for www.shop.test: asked resolver, then from its cache" in lookup.claims[0].text
