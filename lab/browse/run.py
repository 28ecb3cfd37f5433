"""`lab browse URL`: load a page in headless Chromium inside a client node, then read the lab's record.

Evidence first: the browser helper (Backend.run_browser) loads the page with the node's
addresses, routes and resolv.conf, trusting the lab CA; lab/browse/driver.py prints every
DevTools event. Around it, the node's DNS cache log is marked and the resolver records its
DNS packets (as `lab trace` does). After it, the balancer's and the servers' logs are read
for each request's trace id (X-Trace-Id). lab.browse.har and lab.browse.evidence, pure,
turn all of it into a BrowseResult.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.backends.protocol import Backend, Progress
from lab.browse.evidence import LabEvidence, lab_evidence, name_lookups, reached_the_lab
from lab.browse.har import Visit, parse_events
from lab.browse.journey import journeys
from lab.browse.onpath import PathRecorder, asks_a_lab_resolver
from lab.interrupts import map_settled
from lab.browse.model import BrowseResult
from lab.errors import RuntimeFailure, UsageError
from lab.kinds import registry
from lab.kinds.registry import HTTP_BALANCER, HTTP_UPSTREAM
from lab.plan.nginx import pools
from lab.topology import Lab
from lab.trace import resolver as dns_evidence
from lab.trace.journey import Target, default_client, parse_target
from lab.trace.steps import owner_of

DRIVER = Path(__file__).with_name("driver.py")
CA_PATH = "/lab/ca.crt"                 # every node's copy of the lab CA (lab-trust-ca reads it)
LOG_TAIL = 2000                         # lines of each server's log searched for the trace ids
# Chromium flags, each for a reason:
# - /dev/shm is 64 MB in a container: its renderers would crash on it;
# - names through the system resolver (getaddrinfo: resolv.conf, the node's own DNS cache), as
#   every other program of the node: Chromium's built-in DNS client would add an HTTPS-record
#   query per name, whose "no such record" answer dnsmasq never caches (no-negcache), so every
#   load would ask the resolver again whatever the OS cache holds;
# - Google's own names (sign-in, preconnect to the search engine, updates) answered "not found"
#   inside the browser: they would only reach the lab's resolver and be refused there, noise
#   beside the page's own lookups.
CHROMIUM_FLAGS = ["--flag=--disable-dev-shm-usage", "--flag=--disable-features=AsyncDns,UseDnsHttpsSvcb",
                  "--flag=--host-resolver-rules=MAP *.google.com ~NOTFOUND, MAP *.googleapis.com ~NOTFOUND, "
                  "MAP *.gvt1.com ~NOTFOUND"]


@dataclass
class PageRecording:
    """Everything gathered for one `lab browse`, before any interpretation (tests replay it)."""

    url: str
    lab: str
    client: str
    code: int                           # the browser helper's exit status
    stdout: str                         # the driver's JSON lines
    stderr: str
    host: str
    stub_log: str | None = None         # the node's DNS cache log during the loads (None: it has none)
    resolver: str | None = None
    resolver_address: str | None = None
    packets: list[dict] = field(default_factory=list)   # the DNS packets the resolver saw
    logs: dict[str, str] = field(default_factory=dict)  # node -> its log lines holding this load's trace ids
    path: dict | None = None            # the path's record (lab.browse.onpath); None: not recorded

    def as_dict(self) -> dict:
        return asdict(self)


def browse(backend: Backend, lab: Lab, url: str, source: str | None = None, reload: bool = False,
           screenshot: bool = False, progress: Progress | None = None, journey: bool = True) -> BrowseResult:
    return interpret(record(backend, lab, url, source, reload, screenshot, progress, journey), lab)


def record(backend: Backend, lab: Lab, url: str, source: str | None = None, reload: bool = False,
           screenshot: bool = False, progress: Progress | None = None, journey: bool = True) -> PageRecording:
    """Load the page in the node's browser helper, with the DNS cache log marked and the resolver
    recording around it (with journey: the caches emptied first, and the path recorded too);
    then the lab's log lines that hold the loads' trace ids."""
    target = parse_target(url)
    source = source or default_client(lab)
    if source not in lab.instance_names():
        raise UsageError(f"lab '{lab.name}' has no node '{source}' (nodes: {', '.join(lab.instance_names())})")
    files = _files_for(backend, lab.name, source)
    arguments = [*CHROMIUM_FLAGS, *(["--reload"] if reload else []), *(["--screenshot", "-"] if screenshot else []),
                 target.url]
    if journey and (_is_address(target.host) or asks_a_lab_resolver(backend, lab.name, source)):
        run, found = _load_recording_the_path(backend, lab, source, target, arguments, files, progress)
    else:
        run, found = _load(backend, lab, source, target, arguments, files, progress)
    found.logs = _server_logs(backend, lab, _trace_ids(run.stdout))
    return found


def _load(backend: Backend, lab: Lab, source: str, target: Target, arguments: list[str], files: dict,
          progress: Progress | None):
    """The browser's run, with only the DNS cache log marked and the resolver's packets recorded."""
    by_name = not _is_address(target.host)
    stub_since = dns_evidence.stub_log_size(backend, lab.name, source) if by_name else None
    resolver = _start_dns_capture(backend, lab.name, source) if by_name else None
    try:
        run = backend.run_browser(lab.name, source, arguments, files, progress)
    finally:
        packets = dns_evidence.stop_capture(backend, lab.name, resolver[0], resolver[2]) if resolver else []
    found = PageRecording(target.url, lab.name, source, run.code, run.stdout, run.stderr, target.host,
                          _stub_log(backend, lab.name, source, stub_since), packets=packets)
    if resolver:
        found.resolver, found.resolver_address = resolver[0], resolver[1]
    return run, found


def _load_recording_the_path(backend: Backend, lab: Lab, source: str, target: Target, arguments: list[str],
                             files: dict, progress: Progress | None):
    """The browser's run with the caches emptied first and the whole path recording around it."""
    recorder = PathRecorder(backend, lab, source, target)
    recording = recorder.start()
    try:
        run = backend.run_browser(lab.name, source, arguments, files, progress)
    finally:
        packets, path = recorder.stop()
    found = PageRecording(target.url, lab.name, source, run.code, run.stdout, run.stderr, target.host,
                          _stub_log(backend, lab.name, source, recording.stub_since), packets=packets, path=path)
    if recording.resolver:
        found.resolver, found.resolver_address = recording.resolver
    return run, found


def interpret(found: PageRecording, lab: Lab) -> BrowseResult:
    """The recording read: the browser's loads, each sent request's record in the lab's logs, and
    per load how the name was found. Pure."""
    result = _read_output(found.url, found.lab, found.client, found.stdout, found.stderr, found.code)
    if not _is_address(found.host):
        result.names = name_lookups(result.visits, found.host, found.client if found.stub_log is not None else None,
                                    found.stub_log, found.resolver, found.resolver_address, found.packets)
    result.evidence = _lab_records(lab, result.visits, found.logs)
    result.journeys = journeys(result, lab, found.host, found.packets, found.path)
    return result


def _trace_ids(stdout: str) -> set[str]:
    """The trace ids (X-Trace-Id) in the browser's record, whether or not a request was sent."""
    return set(re.findall(r'"[Xx]-[Tt]race-[Ii]d": "([0-9a-f]{32})"', stdout))


def _server_logs(backend: Backend, lab: Lab, trace_ids: set[str]) -> dict[str, str]:
    """Each balancer's and upstream server's log lines holding one of the trace ids."""
    nodes = [i.name for i in lab.instances
             if registry.is_a(i.kind, HTTP_BALANCER) or registry.is_a(i.kind, HTTP_UPSTREAM)]

    def lines_of(node: str) -> str:
        try:
            text = b"".join(backend.logs(lab.name, node, tail=LOG_TAIL)).decode(errors="replace")
        except RuntimeFailure:
            return ""   # a node gone: it recorded nothing we can read
        return "".join(line + "\n" for line in text.splitlines() if any(t in line for t in trace_ids))

    if not trace_ids:
        return {}
    return dict(zip(nodes, map_settled(lines_of, nodes, 8)))


def _files_for(backend: Backend, lab: str, node: str) -> dict[str, bytes]:
    """What the helper needs from the node: its resolv.conf and the lab CA, and the driver."""
    files = {"driver.py": DRIVER.read_bytes(),
             "resolv.conf": backend.read_file(lab, node, "/etc/resolv.conf").encode()}
    try:
        files["ca.crt"] = backend.read_file(lab, node, CA_PATH).encode()
    except RuntimeFailure:
        pass   # a lab without TLS: nothing to trust
    return files


def _start_dns_capture(backend: Backend, lab: str, node: str) -> tuple[str, str, str] | None:
    """(resolver node, its address, capture id), recording; None when the node asks no lab resolver."""
    try:
        resolver, address = dns_evidence.resolver_of_node(backend, lab, node)
    except RuntimeFailure:
        return None
    if resolver == node:
        return None
    capture = secrets.token_hex(6)
    dns_evidence.start_capture(backend, lab, resolver, capture)
    return resolver, address, capture


def _stub_log(backend: Backend, lab: str, node: str, since: int | None) -> str | None:
    if since is None:
        return None
    result = backend.exec(lab, node, ["tail", "-c", f"+{since + 1}", dns_evidence.STUB_LOG])
    return result.stdout if result.code == 0 else ""


def _read_output(url: str, lab: str, client: str, stdout: str, stderr: str, code: int) -> BrowseResult:
    lines = stdout.splitlines()
    shot = None
    for line in lines:
        if line.startswith('{"screenshot"'):
            shot = base64.b64decode(json.loads(line)["screenshot"])
    events = [line for line in lines if line.startswith("{") and not line.startswith('{"screenshot"')]
    try:
        visits = parse_events(events)
    except (ValueError, KeyError) as error:
        raise RuntimeFailure(f"the browser's record could not be read ({error}); its last words: "
                             f"{stderr.strip()[-300:]}") from None
    result = BrowseResult(url, lab, client, visits, screenshot=shot)
    said = [v.error for v in visits if v.error]
    if code != 0 or not visits:
        result.error = said[0] if said else (stderr.strip().splitlines() or [f"the browser exited {code}"])[-1]
    return result


def _lab_records(lab: Lab, visits: list[Visit], logs: dict[str, str]) -> dict[str, LabEvidence]:
    """Each sent request's record in the logs of the lb it reached and the server behind it."""
    names = {str(a): i.name for i in lab.instances for a in i.all_addresses()}
    found = {}
    for entry in (e for v in visits for e in v.entries if reached_the_lab(e)):
        owner = _owner(lab, entry.remote)
        if owner is None or not registry.is_a(owner.kind, HTTP_BALANCER):
            continue
        found[entry.trace_id] = lab_evidence(entry.trace_id, owner.name, logs.get(owner.name, ""),
                                             lambda node: logs.get(node, ""), names,
                                             lambda node: _database_of(lab, node), _pools(lab, owner))
    return found


def _owner(lab: Lab, remote: str):
    """The node holding the address Chromium connected to (IPv4, or IPv6 in brackets), if any."""
    try:
        return owner_of(lab, remote.strip("[]"))
    except ValueError:
        return None


def _pools(lab: Lab, lb) -> dict[str, list[str]]:
    """The lb's upstream pools (nginx's names, as its log gives them) -> their servers."""
    return {pool: [i.name for upstream in members for i in lab.instances_of(upstream.node)]
            for pool, members in pools(lab, lb).items()}


def _database_of(lab: Lab, instance: str) -> str | None:
    if instance not in lab.instance_names():
        return None
    node = lab.spec.nodes.get(lab.instance(instance).node)
    database = registry.get(node.kind).database_of(node) if node else None
    replicas = lab.instances_of(database) if database else []
    return replicas[0].name if replicas else None


def _is_address(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
