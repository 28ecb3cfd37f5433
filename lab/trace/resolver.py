"""DNS evidence gathered through the Backend: dig in a node, a resolver's packets, its cache.

Only commands run in the lab's nodes (the backend's `exec`); what they print is
read by pure functions (lab.trace.dig, lab.trace.dns). The resolver image carries
the capture and flush tools (services/resolver/bin).
"""

from __future__ import annotations

import json

from lab.backends.protocol import Backend
from lab.errors import RuntimeFailure
from lab.kinds import registry
from lab.kinds.registry import RECURSIVE_RESOLVER
from lab.trace.dig import DigAnswer, parse_dig
from lab.trace.stub import StubAnswer, parse_stub_log, upstream_of_stub

STUB_CONF = "/lab/etc/dnsmasq.conf"     # lab/plan/stub.py renders it; lab-client starts dnsmasq
STUB_LOG = "/run/lab/dnsmasq.log"


def dig(backend: Backend, lab: str, node: str, name: str, rtype: str = "A",
        server: str | None = None, recurse: bool = True) -> DigAnswer:
    """Run dig in a node: through its resolv.conf, or at a given server address."""
    command = ["dig", "+tries=1", "+time=5", name, rtype]
    if server:
        command.append(f"@{server}")
    if not recurse:
        command.append("+norecurse")
    result = backend.exec(lab, node, command)
    output = result.output
    answer = parse_dig(output, name, rtype)
    if result.code != 0 and not answer.error:
        answer.error = output.strip().splitlines()[-1] if output.strip() else f"dig exited {result.code}"
    return answer


def resolver_of_node(backend: Backend, lab: str, node: str) -> tuple[str, str]:
    """(resolver node, address) that a node's /etc/resolv.conf names."""
    result = backend.exec(lab, node, ["cat", "/etc/resolv.conf"])
    servers = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("nameserver")]
    if result.code != 0 or not servers:
        raise RuntimeFailure(f"node '{node}' has no resolver in /etc/resolv.conf")
    address = servers[0]
    if address.startswith("127."):
        upstream = stub_upstream(backend, lab, node)
        if upstream is None:
            return node, address
        address = upstream   # the node's own DNS cache forwards there: that is its resolver
    book = backend.address_book(lab)
    if address not in book:
        raise RuntimeFailure(f"node '{node}' asks {address}, which is no node of lab '{lab}'")
    return book[address], address


def stub_upstream(backend: Backend, lab: str, node: str) -> str | None:
    """The resolver address the node's DNS cache forwards to; None when it has no cache."""
    result = backend.exec(lab, node, ["cat", STUB_CONF])
    return upstream_of_stub(result.stdout) if result.code == 0 else None


def stub_log_size(backend: Backend, lab: str, node: str) -> int | None:
    """How long the node's DNS cache log is now (None: no cache), to read only what follows."""
    result = backend.exec(lab, node, ["sh", "-c", f"test -e {STUB_CONF} && wc -c < {STUB_LOG}"])
    return int(result.stdout.strip()) if result.code == 0 and result.stdout.strip().isdigit() else None


def stub_answer(backend: Backend, lab: str, node: str, since: int, name: str, rtype: str = "A") -> StubAnswer:
    """What the node's DNS cache logged about name after byte `since` of its log."""
    result = backend.exec(lab, node, ["tail", "-c", f"+{since + 1}", STUB_LOG])
    return parse_stub_log(result.stdout if result.code == 0 else "", node, name, rtype)


def flush_stub(backend: Backend, lab: str, node: str) -> bool:
    """Empty the node's DNS cache (dnsmasq clears it on SIGHUP); False when it has none."""
    result = backend.exec(lab, node, ["sh", "-c", f"test -e {STUB_CONF} && pkill -HUP -x dnsmasq"])
    return result.code == 0


def resolvers(backend: Backend, lab: str) -> list[str]:
    return sorted(n for n, kind in backend.node_kinds(lab).items() if registry.is_a(kind, RECURSIVE_RESOLVER))


def _run_on_resolver(backend: Backend, lab: str, resolver: str, command: list[str]):
    kinds = backend.node_kinds(lab)
    if resolver in kinds and not registry.is_a(kinds[resolver], RECURSIVE_RESOLVER):
        raise RuntimeFailure(f"node '{resolver}' is not a resolver (kind {kinds[resolver]})")
    return backend.exec(lab, resolver, command)   # an unknown node: exec names the lab's nodes


def start_capture(backend: Backend, lab: str, resolver: str, capture_id: str) -> None:
    result = _run_on_resolver(backend, lab, resolver, ["/usr/local/bin/lab-capture", "start", capture_id])
    if result.code != 0:
        raise RuntimeFailure(f"cannot capture DNS traffic on '{resolver}': {result.output.strip()}")


def stop_capture(backend: Backend, lab: str, resolver: str, capture_id: str) -> list[dict]:
    """The DNS packets seen since start_capture, decoded (see services/resolver/bin/lab-pcap-dns)."""
    result = _run_on_resolver(backend, lab, resolver, ["/usr/local/bin/lab-capture", "stop", capture_id])
    if result.code != 0:
        raise RuntimeFailure(f"cannot read the DNS capture on '{resolver}': {result.stderr.strip()}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def flush(backend: Backend, lab: str, resolver: str) -> None:
    result = _run_on_resolver(backend, lab, resolver, ["/usr/local/bin/lab-unbound-flush"])
    if result.code != 0:
        raise RuntimeFailure(f"flushing '{resolver}' failed: {result.output.strip()}")
