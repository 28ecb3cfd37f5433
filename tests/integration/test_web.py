"""The web tier on a real engine, default topology: the laptop reaches the shop over HTTPS
through the routers, the firewall, the load balancer, an app and the database."""

from __future__ import annotations

import collections
import json
import re
import time

import pytest

from lab.backends.docker.inspect import start_node, stop_node

from .conftest import running_lab, topology_text

LAB = "it-web"
NAMES = ("www.shop.test", "store.shop.test", "shop.test")
REPLICAS = ("app-1", "app-2", "app-3")
WEB_REPLICAS = ("web-1", "web-2")


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", LAB)) as lab:
        yield lab


def lb_address(shop) -> str:
    return str(shop.lab.instance("lb").address_on("dmz"))


def dns_works(shop) -> bool:
    code, output = shop.exec("laptop", "dig", "+short", "+time=2", "+tries=1", "www.shop.test")
    return code == 0 and lb_address(shop) in output.split()


def resolve_args(shop) -> list[str]:
    """Empty when the lab's DNS answers for www.shop.test; else pin the names to the lb."""
    if getattr(shop, "dns_works", None) is None:
        shop.dns_works = dns_works(shop)   # asked once per lab
    if shop.dns_works:
        return []
    return [arg for name in NAMES for port in (80, 443)
            for arg in ("--resolve", f"{name}:{port}:{lb_address(shop)}")]


def curl(shop, url: str, *args: str, node: str = "laptop") -> tuple[int, dict, str]:
    """(status, lower-cased headers (repeated ones joined with ', '), body) of one request."""
    command = ["curl", "-sS", "--max-time", "15", "-D", "-", *resolve_args(shop), *args, url]
    code, output = shop.exec(node, "sh", "-c", " ".join(f"'{part}'" for part in command) + " 2>&1")
    assert code == 0, output
    return _parse(output)


def _parse(output: str) -> tuple[int, dict, str]:
    head, _, body = output.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status, headers, body


def served_by(shop, count: int, path: str = "/healthz", node: str = "laptop") -> list[str]:
    """Which replica answered each of count requests (all must succeed)."""
    script = (f"for i in $(seq {count}); do curl -sS -o /dev/null --max-time 15 -w '%{{http_code}} ' "
              f"-D - {' '.join(resolve_args(shop))} https://www.shop.test{path} "
              "| tr -d '\\r' | grep -i -E '^x-served-by:|^[0-9]{3} $' | tr '\\n' ' '; echo; done")
    code, output = shop.exec(node, "sh", "-c", script)
    assert code == 0, output
    replicas = []
    for line in output.strip().splitlines():
        match = re.search(r"x-served-by: (\S+)\s+200", line, re.IGNORECASE)
        assert match, f"a request failed: {line!r}"
        replicas.append(match.group(1))
    return replicas


def test_https_from_the_laptop_reaches_an_app_and_the_database(shop):
    # The name comes from the lab's own DNS (resolver, root, TLD, authoritative), no --resolve.
    assert dns_works(shop), "www.shop.test does not resolve to the lb from the laptop"
    code, output = shop.exec("laptop", "curl", "-sS", "--max-time", "15", "-D", "-", "--cacert",
                             "/lab/ca.crt", "https://www.shop.test/api/products")
    assert code == 0, output
    status, headers, body = _parse(output)
    assert status == 200 and "Lab coat" in body   # products: from the db
    assert headers["x-served-by"] in REPLICAS
    app = shop.lab.instance(headers["x-served-by"]).address_on("apps")
    assert headers["x-upstream-addr"] == f"{app}:8000"
    timing = headers["server-timing"]
    for entry in ("lb;", "app;", "db;"):
        assert entry in timing, timing


def test_the_page_and_its_files_come_from_a_web_server_with_cache_headers(shop):
    status, headers, body = curl(shop, "https://www.shop.test/")
    assert status == 200 and "The lab shop" in body and "/static/shop.js" in body
    assert headers["x-served-by"] in WEB_REPLICAS
    web = shop.lab.instance(headers["x-served-by"]).address_on("apps")
    assert headers["x-upstream-addr"] == f"{web}:80"
    assert headers["cache-control"] == "no-cache" and headers["etag"] and headers["last-modified"]
    status, headers, _ = curl(shop, "https://www.shop.test/static/shop.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert headers["cache-control"].startswith("public, max-age=") and headers["x-served-by"] in WEB_REPLICAS
    # revalidation: the ETag one replica sent is a 304 at whichever answers next
    for _ in range(2):
        status, again, body = curl(shop, "https://www.shop.test/static/shop.css",
                                   "-H", f"If-None-Match: {headers['etag']}")
        assert status == 304 and body == "" and again["etag"] == headers["etag"]


def test_the_laptop_trusts_the_lab_ca_without_being_told(shop):
    status, _, _ = curl(shop, "https://store.shop.test/api/products")   # no --cacert, no -k
    assert status == 200


def test_http_redirects_to_https(shop):
    status, headers, _ = curl(shop, "http://www.shop.test/api/orders?x=1")
    assert status == 301
    assert headers["location"] == "https://www.shop.test/api/orders?x=1"


def _app_log_line(shop, replica: str, traceparent: str) -> dict:
    """The JSON line the app logged for the request that got this traceparent back."""
    logs = shop.client.containers.get(f"{shop.name}-{replica}").logs().decode(errors="replace")
    lines = [json.loads(line) for line in logs.splitlines() if traceparent in line and line.startswith("{")]
    assert len(lines) == 1, logs[-2000:]
    return lines[0]


def test_input_the_database_refuses_is_the_requests_fault_not_an_outage(shop):
    nul = '{"product_id": 1, "customer": "a\\u0000b"}'
    status, headers, body = curl(shop, "https://www.shop.test/api/orders", "-H", "Content-Type: application/json",
                                 "--data-binary", nul)
    answer = json.loads(body)
    assert status == 400, body
    assert answer["error"] == "the database refused this request's data" and "NUL" in answer["reason"]
    assert "Traceback" not in body
    # the app itself logged a 400 for it (not a 503), and the database is fine
    logged = _app_log_line(shop, headers["x-served-by"], headers["traceparent"])
    assert (logged["path"], logged["status"]) == ("/api/orders", 400)
    assert curl(shop, "https://www.shop.test/api/products")[0] == 200
    # ids no table can hold are refused before the database is asked
    status, headers, body = curl(shop, "https://www.shop.test/api/orders/99999999999999999999")
    assert status == 422 and json.loads(body)["error"] == "invalid request", body
    assert _app_log_line(shop, headers["x-served-by"], headers["traceparent"])["db_ms"] == 0


def test_a_huge_invalid_body_is_not_echoed_back(shop):
    make = "python3 -c 'import json; print(json.dumps({\"product_id\": \"x\" * 900000}))' > /tmp/big.json"
    code, output = shop.exec("laptop", "sh", "-c", make)
    assert code == 0, output
    status, _, body = curl(shop, "https://www.shop.test/api/orders", "-H", "Content-Type: application/json",
                           "--data-binary", "@/tmp/big.json")
    assert status == 422 and len(body) < 1000, (status, len(body))
    assert json.loads(body)["problems"][0]["loc"] == ["body", "product_id"]


def test_https_responses_carry_hsts_and_plain_http_does_not(shop):
    for path in ("/", "/api/products", "/docs", "/no-such-page"):
        _status, headers, _ = curl(shop, f"https://www.shop.test{path}")
        assert headers.get("strict-transport-security") == "max-age=31536000", (path, headers)
    _status, headers, _ = curl(shop, "http://www.shop.test/")
    assert "strict-transport-security" not in headers


def test_api_docs_answer_inside_the_site_only(shop):
    def app_lines(path: str) -> int:
        return sum(shop.client.containers.get(f"{shop.name}-{r}").logs().decode().count(f'"path": "{path}"')
                   for r in REPLICAS)
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        before = app_lines(path)
        status, headers, _ = curl(shop, f"https://www.shop.test{path}")
        assert status == 404 and "x-upstream-addr" not in headers, (path, status, headers)
        assert app_lines(path) == before, path       # no app was asked
    app = shop.lab.instance("app-1").address_on("apps")
    status, _, body = curl(shop, f"http://{app}:8000/openapi.json", node="lb")
    assert status == 200 and json.loads(body)["info"]["title"] == "lab shop"


def test_traceparent_is_passed_along_and_logged_as_json(shop):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    sent = f"00-{trace}-00f067aa0ba902b7-01"
    status, headers, _ = curl(shop, "https://www.shop.test/healthz", "-H", f"traceparent: {sent}")
    assert status == 200
    assert headers["traceparent"].startswith(f"00-{trace}-") and headers["traceparent"] != sent
    code, log = shop.exec("lb", "tail", "-n", "20", "/var/log/nginx/access.json")
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [e for e in entries if e["client_traceparent"] == sent]
    assert mine, log
    for key in ("upstream_addr", "upstream_connect_time", "upstream_response_time", "request_time"):
        assert mine[-1][key] != "", key
    assert mine[-1]["traceparent"].startswith(f"00-{trace}-")
    # The app logs each request as JSON to the engine's log, with its own span of the trace.
    logs = shop.client.containers.get(f"{shop.name}-{headers['x-served-by']}").logs(tail=50).decode()
    assert trace in logs


def test_round_robin_spreads_30_requests_evenly(shop):
    counts = collections.Counter(served_by(shop, 30))
    assert counts == {name: 10 for name in REPLICAS}, counts


def _nginx_workers(shop) -> set[str]:
    code, output = shop.exec("lb", "pgrep", "-f", "nginx: worker process")
    return set(output.split()) if code == 0 else set()


def _with_algorithm(shop, algorithm: str):
    text = topology_text("default", LAB).replace("algorithm: round-robin", f"algorithm: {algorithm}")
    before = _nginx_workers(shop)
    report = shop.up(text)
    assert "lb" in report.reloaded, report   # applied in place: nginx reloaded, not restarted
    # `nginx -s reload` returns before the master acts on it: the new config serves once every
    # worker of the old one has gone (observed by process id), not after a fixed wait
    deadline = time.monotonic() + 20
    while (now := _nginx_workers(shop)) & before or not now:
        assert time.monotonic() < deadline, f"nginx's old workers never finished: {before & now}"
        time.sleep(0.1)


def test_least_connections_avoids_busy_replicas(shop):
    _with_algorithm(shop, "least-connections")
    try:
        # Two slow requests keep two replicas busy; quick ones must all go to the idle third.
        # (polled, not slept: under load the slow ones reach their replicas when they do)
        busy = f"curl -s -o /dev/null {' '.join(resolve_args(shop))} 'https://www.shop.test/api/work?ms=8000'"
        code, output = shop.exec("laptop", "sh", "-c", f"({busy} &) ; ({busy} &) ; echo started")
        assert code == 0, output
        deadline, quick = time.monotonic() + 6, []
        while len(set(quick)) != 1:   # round-robin would spread every three over three replicas
            assert time.monotonic() < deadline, f"quick requests never went to one replica only: {quick}"
            quick = served_by(shop, 3)
        # Once idle again, least connections falls back to taking turns.
        deadline, spread = time.monotonic() + 30, []
        while len(set(spread)) != 3:
            assert time.monotonic() < deadline, f"idle replicas never took turns again: {spread}"
            time.sleep(0.5)
            spread = served_by(shop, 6)
    finally:
        _with_algorithm(shop, "round-robin")


def test_ip_hash_keeps_a_client_on_one_replica(shop):
    _with_algorithm(shop, "ip-hash")
    try:
        assert len(set(served_by(shop, 12))) == 1
    finally:
        _with_algorithm(shop, "round-robin")


def test_a_stopped_replica_gets_no_traffic_and_returns_when_started(shop):
    stop_node(shop.client, shop.name, "app-2")
    try:
        replicas = served_by(shop, 12)   # every one answered 200 (checked inside)
        assert "app-2" not in replicas and set(replicas) == {"app-1", "app-3"}
    finally:
        start_node(shop.client, shop.name, "app-2")
    # nginx retries a failed server after fail_timeout (10 s in the default topology).
    deadline = time.monotonic() + 30
    while "app-2" not in served_by(shop, 6):
        assert time.monotonic() < deadline, "app-2 got no traffic 30 s after it started"
        time.sleep(1)


def _started_at(shop, node: str) -> str:
    container = shop.client.containers.get(f"{shop.name}-{node}")
    container.reload()
    return container.attrs["State"]["StartedAt"]


def test_database_down_gives_503_json_and_recovers_without_restarting_apps(shop):
    before = {name: _started_at(shop, name) for name in REPLICAS}
    stop_node(shop.client, shop.name, "db")
    try:
        status, headers, body = curl(shop, "https://www.shop.test/api/orders")
        assert status == 503 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "database unavailable"
        assert "Traceback" not in body
        status, _, _ = curl(shop, "https://www.shop.test/readyz")
        assert status == 503
        status, _, _ = curl(shop, "https://www.shop.test/healthz")   # alive all the same
        assert status == 200
    finally:
        start_node(shop.client, shop.name, "db")
    for _ in range(3):   # every replica, through the lb's rotation
        status, _, _ = curl(shop, "https://www.shop.test/readyz")
        assert status == 200
        status, _, body = curl(shop, "https://www.shop.test/api/orders")
        assert status == 200 and isinstance(json.loads(body), list)
    assert {name: _started_at(shop, name) for name in REPLICAS} == before


@pytest.mark.parametrize("version, accepted", [("tls1", False), ("tls1_1", False),
                                               ("tls1_2", True), ("tls1_3", True)])
def test_only_tls_1_2_and_1_3_with_a_chain_to_the_lab_ca(shop, version, accepted):
    # SECLEVEL=0 lets the client offer old versions: a refusal must come from the server.
    command = (f"echo | openssl s_client -connect {lb_address(shop)}:443 -servername www.shop.test "
               f"-{version} -cipher 'DEFAULT@SECLEVEL=0' -CAfile /lab/ca.crt -verify_return_error 2>&1")
    code, output = shop.exec("laptop", "sh", "-c", command)
    if accepted:
        assert code == 0, output
        assert "Verify return code: 0 (ok)" in output
        assert f"depth=1 O = lab, CN = lab {shop.name} CA" in output
    else:
        assert code != 0 and "alert protocol version" in output, output


def test_an_order_survives_down_and_up_but_not_down_volumes(shop):
    status, _, body = curl(shop, "https://www.shop.test/api/orders", "-X", "POST",
                           "-H", "content-type: application/json",
                           "-d", '{"product_id": 3, "quantity": 2, "customer": "ada"}')
    assert status == 201, body
    order = json.loads(body)["id"]
    shop.down(volumes=False)
    shop.up()
    status, _, body = curl(shop, f"https://www.shop.test/api/orders/{order}")
    assert status == 200 and json.loads(body)["customer"] == "ada"
    shop.down(volumes=True)
    shop.up()
    status, _, _ = curl(shop, f"https://www.shop.test/api/orders/{order}")
    assert status == 404
