"""A page load read from DevTools events: a real recording of Debian's Chromium 156 (headless,
lab/browse/driver.py --reload) loading the shop's page (services/web/site) from a loopback
HTTP/1.0 server that also answered /api/products, twice in one browser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.browse.har import DISK, MEMORY, NETWORK, PHASES, REVALIDATED, parse_events, phases_of

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "devtools" / "loopback-reload.jsonl"


@pytest.fixture(scope="module")
def visits():
    return parse_events(RECORDING.read_text().splitlines())


def test_a_cold_load_records_the_page_its_files_and_the_api_call(visits):
    first = visits[0]
    assert first.number == 1 and first.loaded and first.navigation["duration"] > 0
    by_path = {e.path: e for e in first.entries}
    assert {"/", "/static/shop.css", "/static/shop.js", "/static/logo.svg", "/api/products"} <= set(by_path)
    assert [by_path[p].resource for p in ("/", "/static/shop.css", "/static/shop.js", "/static/logo.svg",
                                          "/api/products")] == ["Document", "Stylesheet", "Script", "Image", "Fetch"]
    assert all(e.cache == NETWORK and e.status in (200, 404) for e in first.entries)
    assert first.entries[0].path == "/" and first.entries[0].started_ms == 0.0


def test_phases_add_up_to_the_request_time_as_the_browser_measured_it(visits):
    for entry in visits[0].entries:
        assert set(entry.phases) == set(PHASES) and all(v >= 0 for v in entry.phases.values())
        assert sum(entry.phases.values()) == pytest.approx(entry.total_ms, abs=0.01), entry.path


def test_new_connections_show_dns_and_connect_and_reused_ones_do_not(visits):
    fresh = [e for e in visits[0].entries if e.reused is False]
    reused = [e for e in visits[0].entries if e.reused is True]
    assert fresh and reused
    assert all(e.phases["connect"] > 0 for e in fresh)
    assert all(e.phases["connect"] == 0 and e.phases["dns"] == 0 for e in reused)
    assert len({e.connection_id for e in fresh}) == len(fresh)   # each its own connection


def test_the_second_load_takes_static_files_from_the_memory_cache(visits):
    second = {e.path: e for e in visits[1].entries}
    for path in ("/static/shop.css", "/static/shop.js", "/static/logo.svg"):
        assert second[path].cache == MEMORY and second[path].phases == {} and second[path].reused is None
    # no-cache: the page is asked again, and the server's 304 (ExtraInfo's statusCode) is kept,
    # not the cached 200 Chromium merged it into; the API's answer is not cacheable at all
    assert second["/"].cache == REVALIDATED and second["/"].status == 304
    assert second["/api/products"].cache == NETWORK


def _one(response: dict, extra: list | None = None) -> list[str]:
    events = [{"visit": 1, "url": "https://www.shop.test/"},
              {"method": "Network.requestWillBeSent", "params": {
                  "requestId": "1", "timestamp": 10.0, "type": "Stylesheet",
                  "request": {"url": "https://www.shop.test/static/shop.css", "method": "GET"}}},
              *(extra or []),
              {"method": "Network.responseReceived", "params": {"requestId": "1", "response": response}},
              {"method": "Network.loadingFinished", "params": {"requestId": "1", "timestamp": 10.05}},
              {"done": 1}]
    return [json.dumps(e) for e in events]


TIMING = {"requestTime": 10.0, "dnsStart": 1.0, "dnsEnd": 3.0, "connectStart": 3.0, "connectEnd": 20.0,
          "sslStart": 8.0, "sslEnd": 20.0, "sendStart": 21.0, "sendEnd": 22.0, "receiveHeadersEnd": 40.0}


def test_tls_is_its_own_phase_and_not_counted_twice_in_connect():
    phases, total = phases_of(TIMING, 10.05)
    assert phases == {"blocked": 1.0, "dns": 2.0, "connect": 5.0, "ssl": 12.0, "send": 2.0, "wait": 18.0,
                      "receive": 10.0}
    assert total == pytest.approx(50.0) and sum(phases.values()) == pytest.approx(total)


def test_a_304_is_revalidated_a_disk_hit_is_disk_and_headers_give_the_trace_id():
    revalidated = parse_events(_one({"status": 304, "protocol": "h2", "timing": TIMING, "connectionReused": True,
                                     "headers": {"X-Trace-Id": "ab" * 16, "x-served-by": "web-2"}}))[0].entries[0]
    assert revalidated.cache == REVALIDATED and revalidated.protocol == "h2"
    assert revalidated.trace_id == "ab" * 16 and revalidated.served_by == "web-2"
    disk = parse_events(_one({"status": 200, "fromDiskCache": True, "timing": TIMING}))[0].entries[0]
    assert disk.cache == DISK and disk.phases == {}


def test_a_failed_request_keeps_chromium_s_reason():
    lines = _one({"status": 200})[:2] + [json.dumps({"method": "Network.loadingFailed", "params": {
        "requestId": "1", "timestamp": 10.2, "errorText": "net::ERR_CONNECTION_REFUSED"}}), json.dumps({"done": 1})]
    entry = parse_events(lines)[0].entries[0]
    assert entry.error == "net::ERR_CONNECTION_REFUSED" and entry.status is None


def test_a_redirect_is_two_rows_the_hop_with_its_own_status_then_its_target():
    events = [{"visit": 1, "url": "http://www.shop.test/"},
              {"method": "Network.requestWillBeSent", "params": {
                  "requestId": "7", "timestamp": 10.0, "type": "Document",
                  "request": {"url": "http://www.shop.test/", "method": "GET"}}},
              {"method": "Network.requestWillBeSent", "params": {
                  "requestId": "7", "timestamp": 10.004, "type": "Document",
                  "request": {"url": "https://www.shop.test/", "method": "GET"},
                  "redirectResponse": {"status": 301, "protocol": "http/1.1", "connectionId": 3,
                                       "connectionReused": False, "remoteIPAddress": "198.18.10.10",
                                       "headers": {"Location": "https://www.shop.test/"},
                                       "timing": {**TIMING, "receiveHeadersEnd": 3.5}}}},
              {"method": "Network.responseReceived", "params": {"requestId": "7", "response": {
                  "status": 200, "protocol": "h2", "connectionId": 4, "connectionReused": False,
                  "headers": {"x-trace-id": "a" * 32}, "timing": {**TIMING, "requestTime": 10.004}}}},
              {"method": "Network.loadingFinished", "params": {"requestId": "7", "timestamp": 10.06}},
              {"done": 1}]
    hop, target = parse_events([json.dumps(e) for e in events])[0].entries
    assert (hop.url, hop.status, hop.protocol, hop.connection_id) == ("http://www.shop.test/", 301, "http/1.1", 3)
    assert (target.url, target.status, target.protocol, target.trace_id) == ("https://www.shop.test/", 200, "h2",
                                                                             "a" * 32)
    assert hop.total_ms == pytest.approx(4.0) and hop.started_ms < target.started_ms
