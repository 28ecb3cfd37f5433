"""Engine-side DNS helpers: dig in a node, capture a resolver's traffic, flush its cache.

The parsing of dig's text output lives here too, so the CLI and the traces get
typed answers and never see raw text.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import docker

from lab.errors import RuntimeFailure
from lab.kinds import registry
from lab.kinds.registry import RECURSIVE_RESOLVER, TRAFFIC_SOURCE
from lab.plan.model import LABEL_KIND, LABEL_NODE
from lab.backends.docker.engine import engine_call
from lab.backends.docker.inspect import node_container, run_in_node
from lab.backends.docker.objects import lab_containers


@dataclass
class DnsRecord:
    name: str
    ttl: int
    type: str
    data: str


@dataclass
class DigAnswer:
    """What dig saw: the server that replied, the status, flags and every section."""

    name: str
    type: str
    server: str = ""
    status: str = ""
    flags: list[str] = field(default_factory=list)
    answer: list[DnsRecord] = field(default_factory=list)
    authority: list[DnsRecord] = field(default_factory=list)
    additional: list[DnsRecord] = field(default_factory=list)
    query_ms: int | None = None
    error: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def values(self, rtype: str | None = None) -> list[str]:
        return [r.data for r in self.answer if rtype is None or r.type == rtype]


SECTION = re.compile(r"^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:")


def parse_dig(text: str, name: str, rtype: str) -> DigAnswer:
    answer = DigAnswer(name, rtype)
    current = None
    for line in text.splitlines():
        if m := re.search(r"status: ([A-Z]+)", line):
            answer.status = m.group(1)
        elif m := re.match(r";; flags: ([a-z ]*)[;]", line):
            answer.flags = m.group(1).split()
        elif m := SECTION.match(line):
            current = getattr(answer, m.group(1).lower())
        elif m := re.match(r";; Query time: (\d+) msec", line):
            answer.query_ms = int(m.group(1))
        elif m := re.match(r";; SERVER: ([0-9.]+)#", line):
            answer.server = m.group(1)
        elif line.startswith(";; connection timed out") or line.startswith(";; communications error"):
            answer.error = line.removeprefix(";; ")
        elif current is not None and line and not line.startswith(";"):
            fields = line.split(None, 4)
            if len(fields) == 5:
                current.append(DnsRecord(fields[0], int(fields[1]), fields[3], fields[4]))
        elif not line:
            current = None
    return answer


def dig(client: docker.DockerClient, lab: str, node: str, name: str, rtype: str = "A",
        server: str | None = None, recurse: bool = True) -> DigAnswer:
    """Run dig in a node: through its resolv.conf, or at a given server address."""
    command = ["dig", "+tries=1", "+time=5", name, rtype]
    if server:
        command.append(f"@{server}")
    if not recurse:
        command.append("+norecurse")
    code, output, _ = run_in_node(client, lab, node, command)
    answer = parse_dig(output, name, rtype)
    if code != 0 and not answer.error:
        answer.error = output.strip().splitlines()[-1] if output.strip() else f"dig exited {code}"
    return answer


def node_kinds(client: docker.DockerClient, lab: str) -> dict[str, str]:
    return {name: c.labels.get(LABEL_KIND, "") for name, c in lab_containers(client, lab).items()}


def first_client(client: docker.DockerClient, lab: str) -> str:
    clients = sorted(n for n, kind in node_kinds(client, lab).items() if registry.is_a(kind, TRAFFIC_SOURCE))
    if not clients:
        raise RuntimeFailure(f"lab '{lab}' has no client node: name one with --from NODE")
    return clients[0]


def address_book(client: docker.DockerClient, lab: str) -> dict[str, str]:
    """Every address of the lab's running nodes -> node name, as the engine reports them."""
    book = {}
    for name, container in lab_containers(client, lab).items():
        for info in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
            if info.get("IPAddress"):
                book[info["IPAddress"]] = container.labels.get(LABEL_NODE, name)
    return book


def resolver_of_node(client: docker.DockerClient, lab: str, node: str) -> tuple[str, str]:
    """(resolver node, address) that a node's /etc/resolv.conf names."""
    code, text, _ = run_in_node(client, lab, node, ["cat", "/etc/resolv.conf"])
    servers = [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")]
    if code != 0 or not servers:
        raise RuntimeFailure(f"node '{node}' has no resolver in /etc/resolv.conf")
    address = servers[0]
    if address.startswith("127."):
        return node, address
    book = address_book(client, lab)
    if address not in book:
        raise RuntimeFailure(f"node '{node}' asks {address}, which is no node of lab '{lab}'")
    return book[address], address


def _resolver_container(client: docker.DockerClient, lab: str, node: str):
    container = node_container(client, lab, node)
    if not registry.is_a(container.labels.get(LABEL_KIND, ""), RECURSIVE_RESOLVER):
        raise RuntimeFailure(f"node '{node}' is not a resolver (kind {container.labels.get(LABEL_KIND)})")
    return container


def start_capture(client: docker.DockerClient, lab: str, resolver: str, capture_id: str) -> None:
    container = _resolver_container(client, lab, resolver)
    with engine_call(f"starting a capture on '{resolver}'"):
        result = container.exec_run(["/usr/local/bin/lab-capture", "start", capture_id])
    if result.exit_code != 0:
        raise RuntimeFailure(f"cannot capture DNS traffic on '{resolver}': "
                             f"{result.output.decode(errors='replace').strip()}")


def stop_capture(client: docker.DockerClient, lab: str, resolver: str, capture_id: str) -> list[dict]:
    """The DNS packets seen since start_capture, decoded (see services/resolver/bin/lab-pcap-dns)."""
    container = _resolver_container(client, lab, resolver)
    with engine_call(f"reading the capture on '{resolver}'"):
        result = container.exec_run(["/usr/local/bin/lab-capture", "stop", capture_id], demux=True)
    stdout, stderr = result.output
    if result.exit_code != 0:
        raise RuntimeFailure(f"cannot read the DNS capture on '{resolver}': {(stderr or b'').decode().strip()}")
    return [json.loads(line) for line in (stdout or b"").decode().splitlines() if line.strip()]


def flush(client: docker.DockerClient, lab: str, resolver: str) -> None:
    container = _resolver_container(client, lab, resolver)
    with engine_call(f"flushing the cache of '{resolver}'"):
        result = container.exec_run(["/usr/local/bin/lab-unbound-flush"])
    if result.exit_code != 0:
        raise RuntimeFailure(f"flushing '{resolver}' failed: {result.output.decode(errors='replace').strip()}")


def resolvers(client: docker.DockerClient, lab: str) -> list[str]:
    return sorted(n for n, kind in node_kinds(client, lab).items() if registry.is_a(kind, RECURSIVE_RESOLVER))
