"""Reading the evidence of an HTTP(S) request: curl's own timings, exit code and verbose
lines (timestamped with --trace-time), the response headers the lb and app add, and the
JSON log lines of the lb and the app for our trace id. Pure parsing.

curl reports time_connect and time_appconnect as 0 whenever the transfer failed, even
when the connection was made (a TLS failure); the timestamped verbose lines say when
it really connected, so times are read from them when curl's own are missing.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

CURL_MARK = "__lab_curl__"
CONNECT_TIMEOUT_S = 3
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) (.*)$")


@dataclass
class RequestOptions:
    """What the user asked curl to send (lab trace -X, -d, -H, --max-time)."""
    method: str | None = None
    data: str | None = None
    headers: list[str] = field(default_factory=list)
    max_time: float = 20.0
    family: int | None = None   # 4 or 6: curl -4 / -6; None: curl chooses (happy eyeballs)


@dataclass
class CurlResult:
    exit_code: int
    timings: dict                        # curl's %{json} write-out (seconds, http_code, ...)
    headers: dict[str, str] = field(default_factory=dict)   # lower-case name -> value(s), comma-joined
    body: str = ""                       # the start of the response body
    connected_to: str | None = None      # the address of curl's "Connected to NAME (ADDRESS)" line
    tls_version: str = ""
    cipher: str = ""
    subject: str = ""
    issuer: str = ""
    matched: str = ""                    # the certificate name curl matched the host against
    verify_ok: bool | None = None
    error: str = ""
    events: dict[str, float] = field(default_factory=dict)  # event -> ms since curl started (verbose)
    verbose: list[str] = field(default_factory=list)        # curl's '*' lines, without timestamps
    verbose_span_ms: float = 0.0         # from curl's first timestamped verbose line to its last

    def ms(self, key: str) -> float:
        return float(self.timings.get(key) or 0) * 1000

    @property
    def status(self) -> int | None:
        code = int(self.timings.get("http_code") or 0)
        return code or None

    @property
    def total_ms(self) -> float:
        """curl's time_total; when a lookup fails curl reports about 0.1 ms whatever the wait
        was, so its own timestamped lines (which span the wait) are the floor."""
        return max(self.ms("time_total"), self.verbose_span_ms)

    @property
    def connected_ms(self) -> float | None:
        """When the TCP connection was established, or None when it never was."""
        return self.ms("time_connect") or self.events.get("connected")

    @property
    def tls_done_ms(self) -> float | None:
        return self.ms("time_appconnect") or self.events.get("tls_done")

    @property
    def lookup_ms(self) -> float:
        """The client's wait for its stub resolver (all of the run when the name did not resolve)."""
        if self.exit_code == 6:
            return self.total_ms
        return self.ms("time_namelookup")

    @property
    def certificate_names(self) -> list[str]:
        """The DNS and IP names in the server certificate (curl's certs write-out)."""
        match = re.search(r"Subject Alternative Name:([^\n]*)", self.timings.get("certs") or "")
        return [name.split(":", 1)[1].strip() for name in match.group(1).split(",")] if match else []

    def said(self, *phrases: str) -> bool:
        text = " ".join([self.error, *self.verbose]).lower()
        return any(phrase.lower() in text for phrase in phrases)


def curl_command(url: str, traceparent: str, options: RequestOptions | None = None) -> list[str]:
    """curl as an application on the node would run it: the name resolved by the node's own
    stub resolver (no --resolve), the family asked for (else curl's own choice, happy
    eyeballs when the name has both), our traceparent to find the request in the logs,
    timestamped verbose lines and every timing as JSON."""
    options = options or RequestOptions()
    family = [f"-{options.family}"] if options.family else []
    command = ["curl", "-sS", "-v", "--trace-time", *family, "--connect-timeout", str(CONNECT_TIMEOUT_S),
               "--max-time", f"{options.max_time:g}", "-H", f"traceparent: {traceparent}"]
    if options.method:
        command += ["-X", options.method]
    if options.data is not None:
        command += ["--data-raw", options.data]
    for header in options.headers:
        command += ["-H", header]
    return [*SPOOLED, *command, "-w", f"\n{CURL_MARK}%{{json}}", url]


# curl's output is spooled to files in the node and printed after it exits. Streamed live, each
# verbose line is relayed through the engine's exec stream (a pipe, the runtime's shim, the
# daemon) while the request runs: measured on 2 cores, that made the request itself ~35% slower
# than a bare curl (bench/trace.py). The arguments pass as "$@", so nothing is re-quoted.
SPOOLED = ["sh", "-c", 'out=$(mktemp) && err=$(mktemp) || exit 125; "$@" >"$out" 2>"$err"; code=$?; '
                       'cat "$err" >&2; cat "$out"; rm -f "$out" "$err"; exit $code', "lab-trace-curl"]


def parse_curl(exit_code: int, stdout: str, stderr: str) -> CurlResult:
    body, _, written = stdout.rpartition(CURL_MARK)
    try:
        timings = json.loads(written) if written.strip() else {}
    except json.JSONDecodeError:
        timings = {}
    result = CurlResult(int(timings.get("exitcode", exit_code) or exit_code), timings, body=body[:2000])
    lines = [_unstamped(line.rstrip("\r")) for line in stderr.splitlines()]
    for _, line in lines:
        _read_verbose_line(result, line)
    stamps = [at for at, _ in lines if at is not None]
    result.verbose_span_ms = round((stamps[-1] - stamps[0]) * 1000, 3) if stamps else 0.0
    result.events = _events(lines, result.total_ms)
    if result.exit_code != 0:
        errors = [line for _, line in lines if line.startswith("curl:")]
        result.error = timings.get("errormsg") or (errors[-1] if errors else f"curl exit status {result.exit_code}")
    return result


def _unstamped(line: str) -> tuple[float | None, str]:
    """('13:14:43.133400 * Connected ...') -> (seconds of the day, '* Connected ...')."""
    match = STAMP.match(line)
    if not match:
        return None, line
    hours, minutes, seconds, rest = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds), rest


# What a verbose line means for the timeline, first match wins.
EVENTS = (("connected", re.compile(r"\* Connected to ")),
          ("tls_start", re.compile(r"\* .*\(OUT\), TLS handshake, Client hello")),
          ("server_hello", re.compile(r"\* .*\(IN\), TLS handshake, Server hello")),
          ("tls_done", re.compile(r"\* SSL connection using ")),
          ("request_sent", re.compile(r"> \S")),
          ("first_byte", re.compile(r"< HTTP/")))


def _events(lines: list[tuple[float | None, str]], total_ms: float) -> dict[str, float]:
    """Each event's first time, in ms since curl started. The verbose clock is the wall
    clock; its last line is (within microseconds) the end of curl's time_total."""
    stamped = [(at, line) for at, line in lines if at is not None]
    if not stamped:
        return {}
    end = stamped[-1][0]
    events: dict[str, float] = {}
    for at, line in stamped:
        for name, pattern in EVENTS:
            if name not in events and pattern.match(line):
                events[name] = round(max(total_ms - (end - at) * 1000, 0.0), 3)
    return events


# "* Connected to www.shop.test (fd6c:6162:198:10::a) port 443 (#0)": the address curl used.
CONNECTED = re.compile(r"\* Connected to \S+ \(([0-9A-Fa-f:.]+)\) port \d+")


def family_of(address: str | None) -> str | None:
    """'IPv6' or 'IPv4' for an address text, None for none."""
    return None if not address else ("IPv6" if ":" in address else "IPv4")


def _read_verbose_line(result: CurlResult, line: str) -> None:
    if line.startswith("* "):
        result.verbose.append(line[2:])
    if line.startswith("< ") and ":" in line:
        name, _, value = line[2:].partition(":")
        key = name.strip().lower()
        # Repeated headers (the lb's and the app's Server-Timing) combine, as HTTP says.
        previous = result.headers.get(key)
        result.headers[key] = f"{previous}, {value.strip()}" if previous else value.strip()
    elif match := CONNECTED.match(line):
        result.connected_to = match.group(1)
    elif match := re.match(r"\* SSL connection using (\S+) / (\S+)", line):
        result.tls_version, result.cipher = match.groups()
    elif match := re.match(r"\*\s+subject: (.*)", line):
        result.subject = match.group(1)
    elif match := re.match(r"\*\s+issuer: (.*)", line):
        result.issuer = match.group(1)
    elif match := re.match(r"\*\s+subjectAltName: host \"([^\"]+)\" matched cert's \"([^\"]+)\"", line):
        result.matched = match.group(2)
    elif "SSL certificate verify ok" in line:
        result.verify_ok = True
    elif "SSL certificate problem" in line:
        result.verify_ok = False


def certificate_probe(address: str, port: int, host: str) -> list[str]:
    """A second, verification-free TLS connection that only reads the server's certificate
    (after a failed handshake curl shows none): openssl prints its subject and names."""
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"   # openssl wants IPv6 bracketed
    connect, name = shlex.quote(where), shlex.quote(host)
    return ["sh", "-c", f"openssl s_client -connect {connect} -servername {name} </dev/null 2>/dev/null"
                        " | openssl x509 -noout -subject -ext subjectAltName"]


def parse_certificate_names(text: str) -> list[str]:
    """'X509v3 Subject Alternative Name: \n    DNS:a, DNS:b, IP Address:1.2.3.4' -> ['a', 'b', '1.2.3.4']"""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "Subject Alternative Name" in line and i + 1 < len(lines):
            return [name.split(":", 1)[1].strip() for name in lines[i + 1].split(",") if ":" in name]
    return []


def server_timing(header: str) -> dict[str, float]:
    """'lb;desc="nginx";dur=3, app;dur=2.1' -> {'lb': 3.0, 'app': 2.1}"""
    timings = {}
    for entry in header.split(","):
        name, *params = [part.strip() for part in entry.split(";")]
        for param in params:
            if param.startswith("dur="):
                try:
                    timings[name] = float(param[4:])
                except ValueError:
                    pass
    return timings


def find_log_line(log: str, trace_id: str) -> dict | None:
    """The last JSON log line that mentions the trace id (nginx and the app both log them)."""
    for line in reversed(log.splitlines()):
        if trace_id in line:
            start = line.find("{")
            try:
                return json.loads(line[start:]) if start >= 0 else None
            except json.JSONDecodeError:
                continue
    return None


@dataclass
class Attempt:
    """One upstream server nginx tried for a request, from its access log line."""
    address: str                 # address:port
    status: str                  # the upstream's status, as nginx logs it ('504' for a connect timeout)
    connect_ms: float | None     # None ('-'): the connection was never made
    response_ms: float | None


def _seconds(text: str) -> float | None:
    try:
        return round(float(text) * 1000, 3)
    except ValueError:
        return None


def upstream_that_answered(attempts: list[Attempt], names: dict[str, str]) -> str | None:
    """The node whose answer the lb passed on: its last attempt, when that one answered (an
    upstream's own status below 500; not a failed connection, whose status nginx gives as 502/504)."""
    if not attempts or not attempts[-1].status.isdigit() or int(attempts[-1].status) >= 500:
        return None
    return names.get(attempts[-1].address.rsplit(":", 1)[0])


def upstream_attempts(log_line: dict) -> list[Attempt]:
    """Each upstream nginx tried for one request, in order."""
    def split(key: str) -> list[str]:
        return [part for part in re.split(r",\s*", str(log_line.get(key, "") or "")) if part]

    addresses, statuses = split("upstream_addr"), split("upstream_status")
    connects, responses = split("upstream_connect_time"), split("upstream_response_time")

    def at(values: list[str], i: int) -> str:
        return values[i] if i < len(values) else ""

    return [Attempt(address, at(statuses, i), _seconds(at(connects, i)), _seconds(at(responses, i)))
            for i, address in enumerate(addresses)]
