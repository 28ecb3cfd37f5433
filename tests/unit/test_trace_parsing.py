"""Reading curl's evidence, Server-Timing and the lb's log, and telling where a journey stopped."""

from lab.trace.model import SCHEMA, Step, Trace
from lab.trace.steps import summary_of
from lab.trace.web import (CURL_MARK, Attempt, find_log_line, parse_certificate_names, parse_curl, server_timing,
                           upstream_attempts)

VERBOSE = """* Connected to www.shop.test (198.18.10.10) port 443
* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384
* Server certificate:
*  subject: CN=www.shop.test
*  issuer: O=lab; CN=lab shop CA
*  SSL certificate verify ok.
< HTTP/1.1 200 OK
< Server-Timing: app;desc="app-2";dur=3.5, db;desc="postgresql";dur=1.25
< X-Served-By: app-2
< Server-Timing: lb;desc="nginx";dur=6
"""


def test_curl_evidence_is_read_from_its_own_output():
    stdout = '<html>shop</html>\n' + CURL_MARK + '{"http_code": 200, "time_connect": 0.0004, "time_total": 0.012}'
    result = parse_curl(0, stdout, VERBOSE)
    assert result.status == 200 and result.ms("time_total") == 12.0
    assert (result.tls_version, result.cipher) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert result.subject == "CN=www.shop.test" and result.issuer.endswith("CN=lab shop CA")
    assert result.verify_ok is True and result.body.startswith("<html>")
    # both Server-Timing headers count: the lb's and the app's
    assert server_timing(result.headers["server-timing"]) == {"app": 3.5, "db": 1.25, "lb": 6.0}


def test_a_failed_curl_keeps_its_error():
    result = parse_curl(28, "\n" + CURL_MARK + '{"http_code": 0}', "curl: (28) Failed to connect: Timeout was reached")
    assert result.status is None and "Timeout" in result.error


def test_the_lb_log_line_of_a_trace_and_its_retries():
    log = ('{"upstream_addr":"198.18.20.11:8000","upstream_status":"200","traceparent":"00-aaa-1-01"}\n'
           '{"upstream_addr":"198.18.20.11:8000, 198.18.20.12:8000","upstream_status":"504, 200",'
           '"traceparent":"00-bbb-2-01"}\n')
    line = find_log_line(log, "bbb")
    assert upstream_attempts(line) == [Attempt("198.18.20.11:8000", "504", None, None),
                                       Attempt("198.18.20.12:8000", "200", None, None)]
    assert find_log_line(log, "ccc") is None


def test_the_summary_tells_the_outcome_where_the_journey_really_stopped():
    trace = Trace("https://www.shop.test/", "shop", "laptop", False, 3000.0, 503, "", steps=[
        Step("request", "request", "laptop", 10, 3000, ok=False, detail="HTTP 503"),
        Step("app", "app", "app-2", 11, 2990, ok=False, detail="answered 503"),
        Step("db", "db", "db", 12, 0, ok=False, detail="did not answer"),
    ], outcome={"ok": False, "category": "db.unavailable", "step": "db", "node": "db",
                "reason": "app-2 could not use db: OperationalError"})
    assert summary_of(trace) == "HTTP 503; stopped at db on db: app-2 could not use db: OperationalError"
    data = trace.as_dict()
    assert data["schema"] == SCHEMA == "lab.trace/2"
    assert data["outcome"]["step"] == "db" and all(s["source"] == "observed" for s in data["steps"])
    assert trace.nodes == ["laptop", "app-2", "db"]


def test_timestamped_verbose_lines_give_times_relative_to_curl_start():
    stderr = ("10:00:00.000000 *   Trying 198.18.10.10:443...\n"
              "10:00:00.002000 * Connected to www.shop.test (198.18.10.10) port 443 (#0)\n"
              "10:00:00.010000 * SSL certificate problem: unable to get local issuer certificate\n"
              "10:00:00.020000 * Closing connection 0\n")
    result = parse_curl(60, "\n" + CURL_MARK + '{"exitcode": 60, "time_total": 0.020, "time_connect": 0,'
                        '"errormsg": "SSL certificate problem: unable to get local issuer certificate"}', stderr)
    assert result.connected_ms == 2.0 and result.verify_ok is False
    assert result.error.startswith("SSL certificate problem")


def test_certificate_names_from_openssl():
    text = ("subject=CN = mail.shop.test\nX509v3 Subject Alternative Name: \n"
            "    DNS:mail.shop.test, DNS:www.shop.test, IP Address:198.18.10.10\n")
    assert parse_certificate_names(text) == ["mail.shop.test", "www.shop.test", "198.18.10.10"]
