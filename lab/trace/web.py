"""Reading the evidence of an HTTP(S) request: curl's own timings and verbose lines, the
response headers the lb and app add, and the lb's JSON access log line. Pure parsing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

CURL_MARK = "__lab_curl__"


@dataclass
class CurlResult:
    exit_code: int
    timings: dict                        # curl's %{json} write-out (seconds, http_code, ...)
    headers: dict[str, str] = field(default_factory=dict)   # lower-case name -> value(s), comma-joined
    body: str = ""                       # the start of the response body
    tls_version: str = ""
    cipher: str = ""
    subject: str = ""
    issuer: str = ""
    verify_ok: bool | None = None
    error: str = ""

    def ms(self, key: str) -> float:
        return float(self.timings.get(key) or 0) * 1000

    @property
    def status(self) -> int | None:
        code = int(self.timings.get("http_code") or 0)
        return code or None


def curl_command(url: str, host: str, port: int, address: str, traceparent: str) -> list[str]:
    """curl with the address already resolved (the trace did the DNS step itself, so the
    request's own clock holds no second lookup) and our traceparent to find it in logs."""
    return ["curl", "-sS", "-v", "--connect-timeout", "3", "--max-time", "20",
            "--resolve", f"{host}:{port}:{address}", "-H", f"traceparent: {traceparent}",
            "-w", f"\n{CURL_MARK}%{{json}}", url]


def parse_curl(exit_code: int, stdout: str, stderr: str) -> CurlResult:
    body, _, written = stdout.rpartition(CURL_MARK)
    try:
        timings = json.loads(written) if written.strip() else {}
    except json.JSONDecodeError:
        timings = {}
    result = CurlResult(exit_code, timings, body=body[:2000])
    for line in stderr.splitlines():
        _read_verbose_line(result, line.rstrip("\r"))
    if exit_code != 0:
        errors = [line for line in stderr.splitlines() if line.startswith("curl:")]
        result.error = errors[-1] if errors else f"curl exit status {exit_code}"
    return result


def _read_verbose_line(result: CurlResult, line: str) -> None:
    if line.startswith("< ") and ":" in line:
        name, _, value = line[2:].partition(":")
        key = name.strip().lower()
        # Repeated headers (the lb's and the app's Server-Timing) combine, as HTTP says.
        previous = result.headers.get(key)
        result.headers[key] = f"{previous}, {value.strip()}" if previous else value.strip()
    elif match := re.match(r"\* SSL connection using (\S+) / (\S+)", line):
        result.tls_version, result.cipher = match.groups()
    elif match := re.match(r"\*\s+subject: (.*)", line):
        result.subject = match.group(1)
    elif match := re.match(r"\*\s+issuer: (.*)", line):
        result.issuer = match.group(1)
    elif "SSL certificate verify ok" in line:
        result.verify_ok = True
    elif "SSL certificate problem" in line:
        result.verify_ok = False


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


def upstream_attempts(log_line: dict) -> list[tuple[str, str]]:
    """[(address:port, status)] of each upstream nginx tried for one request, in order."""
    addresses = [a for a in re.split(r",\s*", log_line.get("upstream_addr", "")) if a]
    statuses = [s for s in re.split(r",\s*", log_line.get("upstream_status", "")) if s]
    return [(address, statuses[i] if i < len(statuses) else "") for i, address in enumerate(addresses)]
