"""What `lab browse` records on the path of a page load, beside the browser's own record.

The same recording as `lab trace` (lab.trace.journey.start_recording / stop_recording): the
firewalls' rule counters before and after, tcpdump on the client and on every router and
firewall (the connections' SYNs, by sequence number, at each hop), the resolver's DNS packets
and where the client's DNS cache log ends. Before it, the resolver's and the client's DNS
caches are emptied, so the first load is cold all the way: the resolver must ask the root,
the TLD and the authoritative server, and its packets show each of them asked and answering.

What comes back is plain data (JSON-shaped), kept in the PageRecording so a test can replay it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict

from lab.backends.protocol import Backend
from lab.errors import RuntimeFailure
from lab.firewall.explain import Counters
from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.topology import Lab
from lab.trace import resolver as dns_evidence
from lab.trace.journey import Recording, Target, start_recording, stop_recording
from lab.trace.wire import Packet


class PathRecorder:
    """Start before the browser runs, stop after (in a finally): nothing keeps capturing."""

    def __init__(self, backend: Backend, lab: Lab, source: str, target: Target) -> None:
        self.backend, self.lab, self.source, self.target = backend, lab, source, target
        self.forwarders = [i.name for i in lab.instances if registry.get(i.kind).forwards]
        self.firewalls = [i.name for i in lab.instances if registry.is_a(i.kind, PACKET_FILTER)]
        self.not_running: list[str] = []
        self.capture = secrets.token_hex(6)
        self.flushed: list[str] = []
        self.recording: Recording | None = None

    def start(self) -> Recording:
        self.flushed = empty_caches(self.backend, self.lab.name, self.source)
        self.not_running = [n for n in dict.fromkeys([*self.forwarders, *self.firewalls])
                            if not _runs(self.backend, self.lab.name, n)]
        self.firewalls = [fw for fw in self.firewalls if fw not in self.not_running]   # no counters to read
        self.recording = start_recording(self.backend, self.lab, self.source, self.target, self.firewalls,
                                         self.capture)
        return self.recording

    def stop(self) -> tuple[list[dict], dict]:
        """(the resolver's DNS packets, the path's record as plain data)."""
        packets, wire, after = stop_recording(self.backend, self.lab, self.recording, self.firewalls, self.capture)
        path = {"port": self.target.port, "flushed": self.flushed, "not_running": self.not_running,
                "wire": {node: [asdict(p) for p in seen] for node, seen in wire.items()},
                "counters": {fw: {"before": counters_as_rows(self.recording.before[fw]),
                                  "after": counters_as_rows(after[fw])} for fw in self.firewalls}}
        return packets, path


def _runs(backend: Backend, lab: str, node: str) -> bool:
    """Can a command run in the node (the engine refuses one in a stopped node)?"""
    try:
        return backend.exec(lab, node, ["true"]).code == 0
    except RuntimeFailure:
        return False


def asks_a_lab_resolver(backend: Backend, lab: str, source: str) -> bool:
    """Does the source's DNS go to a resolver node of the lab (whose packets can be recorded)?"""
    try:
        return dns_evidence.resolver_of_node(backend, lab, source)[0] != source
    except RuntimeFailure:
        return False


def empty_caches(backend: Backend, lab: str, source: str) -> list[str]:
    """Flush the resolver the source asks and the source's own DNS cache; what was flushed."""
    flushed = []
    try:
        resolver, _ = dns_evidence.resolver_of_node(backend, lab, source)
    except RuntimeFailure:
        resolver = source
    if resolver != source:
        dns_evidence.flush(backend, lab, resolver)
        flushed.append(f"{resolver}'s cache")
    if dns_evidence.flush_stub(backend, lab, source):
        flushed.append(f"{source}'s DNS cache (dnsmasq)")
    return flushed


def counters_as_rows(counters: Counters) -> list[list]:
    return [[chain, name, packets, size] for (chain, name), (packets, size) in counters.items()]


def counters_from_rows(rows: list[list]) -> Counters:
    return {(chain, name): (packets, size) for chain, name, packets, size in rows}


def wire_from_data(wire: dict[str, list[dict]]) -> dict[str, list[Packet]]:
    return {node: [Packet(**p) for p in seen] for node, seen in wire.items()}
