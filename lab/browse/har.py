"""A page load as HAR-style entries, read from the DevTools events lab/browse/driver.py printed.

Pure functions: no browser, no lab. Per request (Network.requestId) it keeps what Chromium
itself reported: the URL and method, the response's status, protocol (HTTP version),
connection id and whether it was reused, the remote address, and its ResourceTiming, from
which the HAR phases are cut (all in milliseconds, -1 in Chromium's record meaning "did not
happen"):

    blocked  request start -> the first of dns / connect / send start
    dns      dnsStart -> dnsEnd
    connect  connectStart -> connectEnd, without the TLS part (HAR counts TLS in both)
    ssl      sslStart -> sslEnd
    send     the connection ready (connectEnd, or the end of blocked) -> sendEnd
    wait     sendEnd -> receiveHeadersEnd (the server's time, and the network's)
    receive  receiveHeadersEnd -> loadingFinished

Where the answer came from: `Network.requestServedFromCache` (memory cache),
`response.fromDiskCache` (disk cache), status 304 (revalidated: Chromium's responseReceived
shows the cached 200 it merged the 304 into; the status on the wire is in
`Network.responseReceivedExtraInfo`), else the network. An
entry served from a cache has no phases (nothing was sent).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

NETWORK, MEMORY, DISK, REVALIDATED = "network", "memory cache", "disk cache", "revalidated (304)"
PHASES = ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")


@dataclass
class Entry:
    """One request of a page load, as the browser saw it."""

    request_id: str
    url: str
    method: str
    resource: str                 # Document, Stylesheet, Script, Image, Fetch, ...
    started_ms: float             # since the page load began (the document's request)
    status: int | None = None
    protocol: str = ""            # http/1.1, h2, ...
    connection_id: int | None = None
    reused: bool | None = None
    remote: str = ""
    cache: str = NETWORK
    phases: dict[str, float] = field(default_factory=dict)
    total_ms: float | None = None
    trace_id: str | None = None   # the lab's trace id (the lb's X-Trace-Id header)
    served_by: str | None = None  # X-Served-By
    error: str | None = None      # Network.loadingFailed

    @property
    def path(self) -> str:
        rest = self.url.split("://", 1)[-1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"

    def as_dict(self) -> dict:
        return {**asdict(self), "path": self.path}


@dataclass
class Visit:
    number: int
    url: str
    entries: list[Entry] = field(default_factory=list)
    navigation: dict | None = None     # the browser's own Navigation Timing of the page
    loaded: bool = False
    error: str | None = None
    wall_start: float | None = None    # unix time the driver began and ended the load
    wall_end: float | None = None

    def as_dict(self) -> dict:
        return {"number": self.number, "url": self.url, "loaded": self.loaded, "error": self.error,
                "wall_start": self.wall_start, "wall_end": self.wall_end,
                "navigation": self.navigation, "entries": [e.as_dict() for e in self.entries]}


def _header(headers: dict, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _send(timing: dict, blocked: float) -> float:
    """From the connection being ready (or the request leaving the queue) to the last byte sent:
    the small gap Chromium leaves before sendStart counts as sending, so the phases tile."""
    ready = next((timing[k] for k in ("connectEnd", "dnsEnd") if timing.get(k, -1) >= 0), blocked)
    end = timing.get("sendEnd", -1)
    return round(end - ready, 3) if end >= 0 else 0.0


def phases_of(timing: dict, finished_s: float | None) -> tuple[dict[str, float], float | None]:
    """HAR phases (ms) from Chromium's ResourceTiming and the loadingFinished timestamp (s)."""
    def span(start: str, end: str) -> float:
        a, b = timing.get(start, -1), timing.get(end, -1)
        return round(b - a, 3) if a >= 0 and b >= 0 else 0.0

    firsts = [timing[k] for k in ("dnsStart", "connectStart", "sendStart") if timing.get(k, -1) >= 0]
    ssl = span("sslStart", "sslEnd")
    phases = {"blocked": round(min(firsts), 3) if firsts else 0.0, "dns": span("dnsStart", "dnsEnd"),
              "connect": round(max(span("connectStart", "connectEnd") - ssl, 0.0), 3), "ssl": ssl,
              "send": _send(timing, min(firsts) if firsts else 0.0), "wait": span("sendEnd", "receiveHeadersEnd"), "receive": 0.0}
    total = None
    if finished_s is not None and "requestTime" in timing and timing.get("receiveHeadersEnd", -1) >= 0:
        total = round((finished_s - timing["requestTime"]) * 1000, 3)
        phases["receive"] = round(max(total - timing["receiveHeadersEnd"], 0.0), 3)
    return phases, total


def _apply(entry: Entry, method: str, params: dict, finished: dict) -> None:
    if method == "Network.requestServedFromCache":
        entry.cache = MEMORY
    elif method == "Network.responseReceivedExtraInfo":
        if params.get("statusCode") == 304 and entry.cache == NETWORK:
            entry.cache, entry.status = REVALIDATED, 304
    elif method == "Network.responseReceived":
        response = params["response"]
        if entry.cache != REVALIDATED:   # else the wire's 304, not the cached 200 it became
            entry.status = response.get("status")
        entry.protocol = response.get("protocol", "")
        entry.connection_id, entry.reused = response.get("connectionId"), response.get("connectionReused")
        entry.remote = response.get("remoteIPAddress", "")
        entry.trace_id = _header(response.get("headers"), "x-trace-id")
        entry.served_by = _header(response.get("headers"), "x-served-by")
        if response.get("fromDiskCache") and entry.cache == NETWORK:
            entry.cache = DISK
        elif entry.status == 304:
            entry.cache = REVALIDATED
        entry.phases = dict(response.get("timing") or {})   # raw until the load finishes
    elif method == "Network.loadingFinished":
        finished[entry.request_id] = params["timestamp"]
    elif method == "Network.loadingFailed":
        entry.error = params.get("errorText") or "failed"
        finished[entry.request_id] = params["timestamp"]


def _finish(entries: dict[str, Entry], finished: dict, began_s: float | None) -> list[Entry]:
    for entry in entries.values():
        timing, entry.phases = entry.phases, {}
        if entry.cache in (MEMORY, DISK):
            # nothing was sent: no phases, no connection (Chromium repeats the stored response's)
            entry.connection_id, entry.reused = None, None
            continue
        if timing:
            entry.phases, entry.total_ms = phases_of(timing, finished.get(entry.request_id))
        elif entry.request_id in finished and began_s is not None:
            entry.total_ms = round((finished[entry.request_id] - began_s) * 1000 - entry.started_ms, 3)
    return sorted(entries.values(), key=lambda e: e.started_ms)   # a redirect's hop before its target


def _end_redirect_hop(entries: dict[str, Entry], finished: dict, params: dict) -> None:
    """A redirect: Chromium goes on under the same request id, giving the hop's answer with the
    next request. The hop becomes an entry of its own (id#n), answered and finished there."""
    hop = entries.pop(params["requestId"])
    hop.request_id = f"{hop.request_id}#{sum(key.startswith(hop.request_id + '#') for key in entries) + 1}"
    entries[hop.request_id] = hop
    _apply(hop, "Network.responseReceived", {"response": params["redirectResponse"]}, finished)
    finished[hop.request_id] = params["timestamp"]


def parse_events(lines: list[str]) -> list[Visit]:
    """The driver's JSON lines -> one Visit per page load, its requests in the order they began."""
    visits: list[Visit] = []
    entries: dict[str, Entry] = {}
    finished: dict[str, float] = {}
    began = None
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        if "visit" in record:
            visits.append(Visit(record["visit"], record.get("url", ""), wall_start=record.get("wall")))
            entries, finished, began = {}, {}, None
        elif "error" in record and visits:
            visits[-1].error = record["error"]
        elif "navigation" in record and visits:
            visits[-1].navigation, visits[-1].loaded = record["navigation"], bool(record.get("loaded"))
        elif "done" in record and visits:
            visits[-1].entries = _finish(entries, finished, began)
            visits[-1].wall_end = record.get("wall")
        elif record.get("method") == "Network.requestWillBeSent" and visits:
            params = record["params"]
            began = params["timestamp"] if began is None else began
            if "redirectResponse" in params and params["requestId"] in entries:
                _end_redirect_hop(entries, finished, params)
            request = params["request"]
            entries[params["requestId"]] = Entry(
                params["requestId"], request["url"], request.get("method", "GET"), params.get("type", ""),
                round((params["timestamp"] - began) * 1000, 3))
        elif record.get("method", "").startswith("Network.") and visits:
            entry = entries.get(record["params"].get("requestId", ""))
            if entry is not None:
                _apply(entry, record["method"], record["params"], finished)
    return visits
