"""The HTML report of a trace: every step, node, duration and detail on one self-contained page."""

from __future__ import annotations

import re
from html import escape

import pytest

from lab.trace.html import _ms, _tick_step, to_html
from lab.trace.model import Step, Trace


def _dns(ok: bool = True) -> Step:
    servers = [Step("dns", "asked root-1 for test. A", "root-1", 1.0, 0.6, detail="referral to test.",
                    evidence=["root-1 198.18.0.11: test. NS tld-test.test."]),
               Step("dns", "asked tld-test for shop.test. A", "tld-test", 1.8, 0.5, detail="referral to shop.test.",
                    evidence=["tld-test 198.18.0.12: shop.test. NS ns-shop.shop.test."])]
    if ok:
        servers.append(Step("dns", "asked ns-shop for www.shop.test. A", "ns-shop", 2.5, 0.4,
                            detail="answer: 198.18.10.10 (authoritative)"))
        return Step("dns", "DNS lookup of www.shop.test", "laptop", 0.0, 4.2, detail="www.shop.test A 198.18.10.10",
                    evidence=["dig: status NOERROR, 4 ms"], peer="resolver", children=servers)
    servers[1] = Step("dns", "asked tld-test for nothing.test. A", "tld-test", 1.8, 0.5, ok=False,
                      detail="NXDOMAIN from tld-test: no such name")
    return Step("dns", "DNS lookup of nothing.test", "laptop", 0.0, 3.1, ok=False,
                detail="NXDOMAIN: tld-test says nothing.test does not exist", peer="resolver", children=servers)


def successful_trace() -> Trace:
    hops = [Step("path", "home-router (NAT)", "home-router", 4.2, 0.0, detail="masquerade-home: source becomes 100.64.0.2"),
            Step("path", "isp-router", "isp-router", 4.2, 0.0),
            Step("path", "fw", "fw", 4.2, 0.0)]
    steps = [
        _dns(),
        Step("path", "route to lb: 3 routers", "laptop", 4.2, 0.0, detail="home-router, isp-router, fw",
             peer="lb", children=hops),
        Step("firewall", "fw lets port 443 in", "fw", 4.2, 0.0, detail="rule web-in (allow), counter 12 -> 13",
             evidence=["-A FORWARD -p tcp -m multiport --dports 80,443 -m comment --comment web-in -j ACCEPT"]),
        Step("tcp", "TCP connect to lb:443", "laptop", 4.2, 1.3, detail="198.18.10.10:443", peer="lb"),
        Step("tls", "TLS handshake with lb", "laptop", 5.5, 6.8, peer="lb",
             detail="TLSv1.3, TLS_AES_256_GCM_SHA384, subject CN=www.shop.test, issuer CN=lab shop CA"),
        Step("request", "GET / and wait for the answer", "laptop", 12.3, 14.9, detail="HTTP 200", peer="lb"),
        Step("lb", "nginx forwards to app-2", "lb", 12.8, 11.0, detail="upstream 198.18.20.12:8000, no retry",
             peer="app-2", evidence=['{"upstream_addr": "198.18.20.12:8000", "request_time": 0.011}']),
        Step("app", "FastAPI on app-2 builds the page", "app-2", 13.5, 8.2, detail="app 8.2 ms", peer="db"),
        Step("db", "PostgreSQL queries", "db", 14.0, 0.7, detail="db 0.7 ms"),
        Step("transfer", "response body", "laptop", 27.2, 0.9, detail="5123 bytes", peer="lb"),
    ]
    return Trace("https://www.shop.test/", "shop", "laptop", True, 28.1, 200,
                 "laptop got 200 from app-2 via lb in 28.1 ms.", steps, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")


def nxdomain_trace() -> Trace:
    return Trace("https://nothing.test/", "shop", "laptop", False, 3.1, None,
                 "The name nothing.test does not exist: tld-test answered NXDOMAIN.", [_dns(ok=False)])


def blocked_trace() -> Trace:
    steps = [_dns(),
             Step("path", "route to lb: 3 routers", "laptop", 4.2, 0.0, peer="lb"),
             Step("firewall", "fw drops port 443", "fw", 4.2, 3000.0, ok=False,
                  detail="rule block-https (deny) <script>alert(1)</script>, counter 0 -> 3",
                  evidence=["-A FORWARD -p tcp --dport 443 -m comment --comment block-https -j DROP"]),
             Step("tcp", "TCP connect to lb:443", "laptop", 4.2, 3000.0, ok=False, detail="timed out after 3 s",
                  peer="lb")]
    return Trace("https://www.shop.test/", "shop", "laptop", False, 3004.2, None,
                 "fw dropped the connection to lb:443 (rule block-https).", steps)


def _web(lb: Step, app: Step, db: Step, status: int) -> list[Step]:
    """The steps after DNS, recorded the other way round: DNS on the resolver, for the client."""
    servers = [Step("dns", "root-1 asked for test. A", "root-1", 0.0, 0.6, detail="referral to test.", peer="resolver"),
               Step("dns", "tld-test asked for shop.test. A", "tld-test", 0.6, 0.5, detail="referral to shop.test.",
                    peer="resolver"),
               Step("dns", "ns-shop asked for www.shop.test. A", "ns-shop", 1.1, 0.4, detail="answer", peer="resolver")]
    return [Step("dns", "DNS lookup of www.shop.test by resolver", "resolver", 0.0, 2.0, True,
                 "www.shop.test is 198.18.10.10", peer="laptop", children=servers),
            Step("tcp", "TCP connection to lb", "laptop", 2.0, 1.1, peer="lb"),
            Step("tls", "TLS handshake with lb", "laptop", 3.1, 5.0, peer="lb", detail="TLSv1.3"),
            Step("request", "request to lb, waiting for the answer", "laptop", 8.1, 1030.0, status < 500,
                 f"HTTP {status}", peer="lb"),
            lb, app, db,
            Step("transfer", "response from lb to the client", "laptop", 1038.1, 0.5, status < 500, peer="lb")]


def dead_upstream_trace() -> Trace:
    retries = [Step("lb", "lb tries app-1", "lb", 8.5, 0.0, False, "upstream status 502 (connect timed out)", peer="app-1"),
               Step("lb", "lb tries app-2", "lb", 8.5, 0.0, True, "upstream status 200", peer="app-2")]
    lb = Step("lb", "lb picks an app server", "lb", 8.5, 1021.0, True, "retried: app-1 (502), then app-2 (200)",
              peer="app-2", children=retries)
    app = Step("app", "app-2 handles the request", "app-2", 1020.0, 7.0, True, "answered 200", peer="db")
    db = Step("db", "db answers app-2's queries", "db", 1022.0, 0.8, True, "0.8 ms of SQL")
    return Trace("https://www.shop.test/", "shop", "laptop", True, 1038.6, 200,
                 "laptop got 200 from app-2 via lb after lb retried (app-1 did not answer).", _web(lb, app, db, 200))


def database_down_trace() -> Trace:
    lb = Step("lb", "lb picks an app server", "lb", 8.5, 1021.0, False, "chose app-3 (198.18.20.13:8000)", peer="app-3")
    app = Step("app", "app-3 handles the request", "app-3", 9.0, 1015.0, False,
               'answered 503: {"error": "database unavailable"}', peer="db")
    db = Step("db", "db answers app-3's queries", "db", 9.5, 0.0, False, "did not answer: the app gave up (503)")
    return Trace("https://www.shop.test/", "shop", "laptop", False, 1038.6, 503,
                 "app-3 answered 503: the database db did not answer.", _web(lb, app, db, 503))


TRACES = {"ok": successful_trace, "nxdomain": nxdomain_trace, "blocked": blocked_trace,
          "dead-upstream": dead_upstream_trace, "database-down": database_down_trace}


def _every_step(trace: Trace):
    for step in trace.steps:
        yield step
        yield from step.children


@pytest.mark.parametrize("name", TRACES)
def test_page_names_every_step_node_duration_and_detail(name):
    trace = TRACES[name]()
    page = to_html(trace)
    for step in _every_step(trace):
        assert escape(step.title) in page
        assert _ms(step.duration_ms) in page
        assert escape(step.detail) in page
    for node in trace.nodes:
        assert f'data-node="{node}"' in page          # a lifeline
    assert trace.summary in page and _ms(trace.total_ms) in page


@pytest.mark.parametrize("name", TRACES)
def test_every_step_carries_its_kind(name):
    trace = TRACES[name]()
    page = to_html(trace)
    rows = re.findall(r'<div class="step[^"]*" data-step="([^"]+)"', page)
    expected = []
    for step in trace.steps:
        expected.append(step.kind)
        expected += [{"dns": "dns-server", "path": "path-hop"}.get(step.kind, f"{step.kind}-part")] * len(step.children)
    assert rows == expected
    arrows = re.findall(r'<g class="arrow[^"]*" data-step="([^"]+)"', page)
    assert arrows == expected                       # one arrow per row in the sequence diagram


def test_verdict_and_status_are_shown():
    ok, failed = to_html(successful_trace()), to_html(nxdomain_trace())
    assert '<header class="ok">' in ok and ">OK<" in ok and "HTTP status</b> 200" in ok
    assert '<header class="failed">' in failed and ">FAILED<" in failed and "no answer" in failed


def test_failed_steps_are_red_with_their_detail():
    page = to_html(nxdomain_trace())
    assert 'class="arrow failed" data-step="dns"' in page
    assert 'class="arrow failed" data-step="dns-server"' in page
    assert "NXDOMAIN from tld-test" in page
    assert 'marker-end="url(#head-failed)"' in page


def test_dns_servers_are_asked_by_the_resolver():
    page = to_html(successful_trace())
    lifelines = re.findall(r'<g class="lifeline" data-node="([^"]+)"', page)
    assert lifelines[0] == "laptop"
    assert lifelines[:5] == ["laptop", "resolver", "root-1", "tld-test", "ns-shop"]
    # resolver (x=230) -> root-1 (x=380): the arrow starts on the resolver's lifeline
    root_arrow = re.search(r'data-step="dns-server"><line x1="(\d+)"[^>]*x2="(\d+)"', page)
    assert (int(root_arrow.group(1)), int(root_arrow.group(2))) == (230, 372)


def test_text_is_escaped():
    page = to_html(blocked_trace())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1               # only the page's own layout check


def test_evidence_is_in_details():
    page = to_html(successful_trace())
    assert page.count("<details>") == sum(bool(s.evidence) for s in _every_step(successful_trace()))
    assert "--comment web-in -j ACCEPT</pre></details>" in page


@pytest.mark.parametrize("name", TRACES)
def test_page_has_no_external_resources(name):
    page = to_html(TRACES[name]())
    rest = page.replace("http://www.w3.org/2000/svg", "").replace(TRACES[name]().url, "")
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"<(link|img|iframe)\b|<script src|@import|url\((?!#)", page)


def test_legend_explains_the_steps_of_the_trace():
    page = to_html(successful_trace())
    for words in ("DNS lookup:", "TCP connect:", "TLS handshake:", "Load balancer:", "Database:"):
        assert words in page
    assert "(not reached in this trace)" not in page
    stopped = to_html(nxdomain_trace())               # what would have come next is still explained
    assert "TLS handshake:" in stopped and stopped.count("(not reached in this trace)") == 9


def test_ticks_are_round():
    assert _tick_step(28.1) == 5
    assert _tick_step(3004.2) == 500
    assert _tick_step(0) > 0


def test_routers_sit_on_the_way_and_hops_chain():
    page = to_html(successful_trace())
    lifelines = re.findall(r'<g class="lifeline" data-node="([^"]+)"', page)
    assert lifelines[5:] == ["home-router", "isp-router", "fw", "lb", "app-2", "db"]
    hops = re.findall(r'data-step="path-hop"><line x1="(\d+)"', page)
    # laptop -> home-router, home-router -> isp-router, isp-router -> fw
    assert [int(x) for x in hops] == [80, 830, 980]


def _arrows(page: str, kind: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(rf'data-step="{kind}"><line x1="(\d+)"[^>]*?x2="(\d+)"', page)]


def test_arrows_point_away_from_the_client_whichever_side_recorded_them():
    page = to_html(dead_upstream_trace())
    lifelines = re.findall(r'<g class="lifeline" data-node="([^"]+)"', page)
    x = {name: 80 + 150 * i for i, name in enumerate(lifelines)}
    assert lifelines[:2] == ["laptop", "resolver"]
    assert _arrows(page, "dns") == [(x["laptop"], x["resolver"] - 8)]          # the laptop asks its resolver
    assert _arrows(page, "dns-server")[0] == (x["resolver"], x["root-1"] - 8)  # which asks root-1
    assert _arrows(page, "lb-part") == [(x["lb"], x["app-1"] - 8), (x["lb"], x["app-2"] - 8)]  # retries
    assert _arrows(page, "transfer") == [(x["lb"], x["laptop"] + 8)]           # the response comes back
    assert "retried: app-1 (502), then app-2 (200)" in page


def test_each_row_says_whether_it_was_observed_or_derived():
    trace = successful_trace()
    trace.steps[1].source = "derived"                 # the path, computed from the routes
    page = to_html(trace)
    sources = re.findall(r'data-step="[^"]+" data-source="([^"]+)"', page)
    assert len(sources) == sum(1 for _ in _every_step(trace))
    assert sources.count("derived") == 1 and '<span class="source derived"' in page
