"""The impairments a traced request met: each link of its path as the kernel shapes it.

After the request, the qdiscs of every node on the path are read (lab.impair_live:
`tc -s qdisc show` in the node), so what the trace says is what the kernel held,
not what a file asked for. A qdisc shapes what its node sends: a link facing the
server shapes the request's upload, one facing the client its download. A delay
is set beside the TCP handshake it stretched; a rate limit beside the measured
throughput of the direction it shapes (curl's own byte counts and times).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from lab.backends.protocol import Backend
from lab.firewall.path import FlowPath
from lab.impair_live import Shaping, observe, rate_words
from lab.interrupts import settled
from lab.topology import Lab
from lab.trace.model import Step, Trace
from lab.trace.web import CurlResult

UP, DOWN, BEHIND = "toward the server", "toward the client", "behind the load balancer"
# A transfer shorter than this at the limit passes mostly as the qdisc's burst: its speed says
# nothing about the limit, so none is claimed.
MEASURABLE_SECONDS = 0.1


def path_nodes(path: FlowPath | None, client: str, behind: list[str]) -> list[str]:
    """The nodes a request crosses, client first, then those behind its target (app, db)."""
    crossed = [client] + ([hop.instance.name for hop in path.hops] + [path.target.name] if path else [])
    return list(dict.fromkeys(crossed + [name for name in behind if name]))


def read(backend: Backend, lab: Lab, nodes: list[str]) -> list[Shaping]:
    addresses = {node: {net: str(a) for net, a in lab.instance(node).addresses.items()}
                 for node in nodes if node in lab.instance_names()}
    return observe(backend, lab.name, addresses)


def direction(lab: Lab, crossed: list[str], shaping: Shaping) -> str:
    """Which way a node's qdisc on a network shapes this request's packets."""
    if shaping.node not in crossed:
        return BEHIND
    at = crossed.index(shaping.node)
    shares = lambda other: shaping.network in lab.instance(other).addresses   # noqa: E731
    if at + 1 < len(crossed) and shares(crossed[at + 1]):
        return UP
    if at > 0 and shares(crossed[at - 1]):
        return DOWN
    return BEHIND


def throughput_bps(curl: CurlResult, up: bool, server_ms: float = 0.0) -> tuple[float, float, float] | None:
    """(bits per second, bytes, seconds) of the upload or the download, from curl's own counts
    and times. An upload runs from curl's pretransfer to its end, less the time the upstream
    took to answer (the lb's log): the lb reads the whole body before it passes the request on.
    (curl 7.88 marks "start transfer" when an upload starts, so that time cannot split it.)
    A download runs from the first byte received to the end."""
    size = float(curl.timings.get("size_upload" if up else "size_download") or 0)
    if up:
        seconds = float(curl.timings.get("time_total") or 0) - float(curl.timings.get("time_pretransfer") or 0) \
            - server_ms / 1000
    else:
        seconds = float(curl.timings.get("time_total") or 0) - float(curl.timings.get("time_starttransfer") or 0)
    if size <= 0 or seconds <= 0:
        return None
    return size * 8 / seconds, size, seconds


def annotate(trace: Trace, lab: Lab, crossed: list[str], shaping: list[Shaping], curl: CurlResult,
             server_ms: float = 0.0) -> None:
    """Say beside each step what the impairments on its path did to it, and list them in the trace."""
    for one in shaping:
        way = direction(lab, crossed, one)
        entry = {"link": one.link, "interface": one.interface, "qdiscs": one.qdiscs, "direction": way,
                 "rate_bps": one.rate_bps, "delay_ms": one.delay_ms}
        if one.delay_ms:
            _note(trace.step("tcp"), _delay_note(trace.step("tcp"), one))
        if one.rate_bps and way in (UP, DOWN):
            measured = throughput_bps(curl, way == UP, server_ms)
            step = trace.step("request" if way == UP else "transfer")
            _note(step, _rate_note(one, way, measured))
            if measured and measured[1] * 8 / one.rate_bps >= MEASURABLE_SECONDS:
                entry["measured_bps"] = round(measured[0])
        trace.impairments.append(entry)


def _note(step: Step | None, words: str) -> None:
    if step is not None and words:
        step.detail = f"{step.detail}; {words}" if step.detail else words
        step.evidence.append(f"{words} (tc -s qdisc show in the node, read after the request)")


def _delay_note(tcp: Step | None, one: Shaping) -> str:
    if tcp is None:
        return ""
    ratio = tcp.duration_ms / one.delay_ms
    return (f"TCP handshake {tcp.duration_ms:.0f} ms; a {one.delay_ms:g} ms delay is set on {one.link} "
            f"(observed qdisc) — about {ratio:.1f}x the one-way delay")


def _rate_note(one: Shaping, way: str, measured: tuple[float, float, float] | None) -> str:
    limit = rate_words(one.rate_bps)
    what = "upload" if way == UP else "download"
    if measured is None:
        return f"a {limit} rate limit is set on {one.link} (observed qdisc), shaping the {what}"
    bps, size, seconds = measured
    if size * 8 / one.rate_bps < MEASURABLE_SECONDS:
        return (f"a {limit} rate limit is set on {one.link} (observed qdisc), shaping the {what}; "
                f"{size:.0f} bytes are too few to measure against it")
    return (f"{what} of {size:.0f} bytes in {seconds * 1000:.0f} ms: {rate_words(bps)}, "
            f"{100 * bps / one.rate_bps:.0f}% of the {limit} limit set on {one.link} (observed qdisc)")


class PathShaping:
    """The path's qdiscs, read in the background from when the path is known (while the trace
    reads the servers' logs); the nodes behind the load balancer once the logs name them."""

    def __init__(self, backend: Backend, lab: Lab, path: FlowPath | None, client: str):
        self._backend, self._lab, self._path, self._client = backend, lab, path, client
        self._on_path = path_nodes(path, client, [])
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._reading = self._pool.submit(read, backend, lab, self._on_path)

    def annotate(self, trace: Trace, behind: list[str | None], curl: CurlResult, server_ms: float) -> None:
        crossed = path_nodes(self._path, self._client, [name for name in behind if name])
        settled([self._reading])
        found = self._reading.result()
        self._pool.shutdown(wait=False)
        found += read(self._backend, self._lab, [node for node in crossed if node not in self._on_path])
        annotate(trace, self._lab, crossed, found, curl, server_ms)
