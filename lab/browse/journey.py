"""The whole journey of one page load, in the 13 steps every "what happens when you type a URL"
walks: browser cache, OS cache, resolver cache, root, TLD, authoritative, routers, firewall,
TCP, TLS, load balancer, web/app server, database.

Pure: it reads what lab/browse/run.py recorded (the browser's record, the client's DNS cache
log, the resolver's DNS packets, tcpdump on the client and on every router and firewall, the
firewalls' rule counters, the servers' log lines by trace id) and says, per load, what each
step did, on which node(s), from which record, with its time where one was measured. A step is
`observed` when a record of this very load shows it (a step that was skipped, "not asked:
answered from the OS cache", is observed too when the packets show nobody was asked), `derived`
when it is worked out (from the topology), `not reached` when the load stopped before it, and
`not observed` when nothing was recorded. The summary counts the steps; it is never a constant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lab.browse.evidence import LabEvidence, NameLookup, reached_the_lab, windows
from lab.browse.har import NETWORK, REVALIDATED, Visit
from lab.browse.onpath import counters_from_rows, wire_from_data
from lab.firewall.explain import computed_verdicts, confirm
from lab.firewall.path import flow_path
from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER, ROOT_SERVER
from lab.topology import Lab
from lab.trace.dns import DnsStep, steps_from_packets
from lab.trace.stub import CACHE, FORWARDED
from lab.trace.wire import DAY, Packet, endpoint, hop_view, tls_on_the_wire

STEPS = ("browser cache", "OS cache", "resolver cache", "root", "TLD", "authoritative", "routers",
         "firewall", "TCP", "TLS", "load balancer", "web/app server", "database")
(BROWSER_CACHE, OS_CACHE, RESOLVER_CACHE, ROOT, TLD, AUTHORITATIVE, ROUTERS, FIREWALL, TCP, TLS, LOAD_BALANCER,
 SERVER, DATABASE) = STEPS
OBSERVED, DERIVED, NOT_REACHED, UNSEEN = "observed", "derived", "not reached", "not observed"
CHROMIUM = "Chromium's DevTools record"


@dataclass
class JourneyStep:
    name: str
    nodes: list[str]
    said: str
    evidence: str              # the record it was read from, or what it was worked out from
    source: str                # OBSERVED, DERIVED, NOT_REACHED or UNSEEN
    ms: float | None = None
    broken: bool = False       # the load failed here

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Journey:
    visit: int
    steps: list[JourneyStep] = field(default_factory=list)

    @property
    def observed(self) -> int:
        return sum(1 for step in self.steps if step.source == OBSERVED)

    @property
    def broken(self) -> JourneyStep | None:
        return next((step for step in self.steps if step.broken), None)

    @property
    def summary(self) -> str:
        text = f"journey: {self.observed} of {len(self.steps)} steps observed"
        if self.broken is not None:
            text += f"; it broke at {self.broken.name}: {self.broken.said}"
        return text

    def as_dict(self) -> dict:
        return {"visit": self.visit, "observed": self.observed, "steps": [s.as_dict() for s in self.steps],
                "broken": self.broken.name if self.broken else None, "summary": self.summary}


@dataclass
class _Load:
    """One load's share of the recording, and what the steps need of the lab."""
    lab: Lab
    client: str
    host: str
    visit: Visit
    name: NameLookup | None
    evidence: list[LabEvidence]
    dns: list[dict]                      # the resolver's packets within the load's window
    resolver: str | None
    resolver_addresses: set[str]
    wire: dict[str, list[Packet]]        # each node's packets within the load's window
    port: int
    counters: dict | None                # firewall -> {"before": rows, "after": rows}, the whole browse
    loads: int = 1                       # how many loads the counters span
    not_running: list[str] = field(default_factory=list)   # routers and firewalls the engine could not run in


def journeys(result, lab: Lab, host: str, packets: list[dict], path: dict | None) -> list[Journey]:
    """One journey per load of the result (a BrowseResult), from the recording's parts."""
    book = {str(a): i.name for i in lab.instances for a in i.all_addresses()}
    resolver = next((n.resolver for n in result.names if n.resolver), None)
    wire = wire_from_data(path["wire"]) if path else {}
    found = []
    for visit, (start, end) in zip(result.visits, windows(result.visits)):
        name = next((n for n in result.names if n.visit == visit.number), None)
        evidence = [result.evidence[e.trace_id] for e in visit.entries
                    if reached_the_lab(e) and e.trace_id in result.evidence]
        load = _Load(lab, result.client, host, visit, name, evidence,
                     [p for p in packets if start <= p.get("time", 0) < end], resolver,
                     {a for a, n in book.items() if n == resolver},
                     {node: _within(seen, start, end) for node, seen in wire.items()},
                     path["port"] if path else 443, path["counters"] if path else None, len(result.visits),
                     path.get("not_running", []) if path else [])
        found.append(journey_of(load, book))
    return found


def _within(packets: list[Packet], start: float, end: float) -> list[Packet]:
    """The packets of a load's window (packets carry seconds of the day, UTC)."""
    low, high = start % DAY, (end % DAY if end != float("inf") else DAY + 1)
    return [p for p in packets if low <= p.time < high or (high < low and (p.time >= low or p.time < high))]


def journey_of(load: _Load, book: dict[str, str]) -> Journey:
    upstream = _upstream_steps(load, book)
    syns = _client_syns(load)
    steps = [_browser_cache(load), _os_cache(load), _resolver_cache(load, upstream),
             *(_dns_server(load, upstream, role) for role in (ROOT, TLD, AUTHORITATIVE)),
             *_path_steps(load, syns), *_tcp_tls(load, syns), *_lab_steps(load)]
    _blame_the_server(steps)
    _mark_unreached(steps)
    return Journey(load.visit.number, steps)


def _blame_the_server(steps: list[JourneyStep]) -> None:
    """A resolver that never answered while a server it asked never replied: the load broke at
    that server (the resolver was still waiting on it), not at the resolver's cache."""
    resolver = steps[STEPS.index(RESOLVER_CACHE)]
    servers = [s for s in steps[STEPS.index(ROOT):STEPS.index(AUTHORITATIVE) + 1] if s.broken]
    if resolver.broken and servers:
        resolver.broken = False
        resolver.said += f" (it was still waiting on {', '.join(n for s in servers for n in s.nodes)})"


def _mark_unreached(steps: list[JourneyStep]) -> None:
    """After the step the load broke at, a step with nothing recorded was not reached (said so)."""
    broken = next((s for s in steps if s.broken), None)
    if broken is None:
        return
    for step in steps[steps.index(broken) + 1:]:
        if step.source == UNSEEN:
            step.source, step.said = NOT_REACHED, f"not reached: the load broke at {broken.name} ({step.said})"


# --- the browser and the names ---------------------------------------------------------------

def _browser_cache(load: _Load) -> JourneyStep:
    entries = [e for e in load.visit.entries if e.url.startswith(("http://", "https://"))]   # not data: URLs
    if not entries:
        return JourneyStep(BROWSER_CACHE, [load.client], "the browser recorded no request", CHROMIUM, UNSEEN)
    cached = [e for e in entries if e.cache not in (NETWORK, REVALIDATED)]
    revalidated = [e for e in entries if e.cache == REVALIDATED]
    if not cached and not revalidated:
        said = f"held nothing of this page: all {len(entries)} requests went to the network"
    else:
        said = (f"{len(cached)} of {len(entries)} requests answered from it"
                + (f" ({', '.join(sorted({e.cache for e in cached}))})" if cached else "")
                + (f", {len(revalidated)} revalidated (304)" if revalidated else "")
                + f", {len(entries) - len(cached) - len(revalidated)} sent")
    return JourneyStep(BROWSER_CACHE, [load.client], said, CHROMIUM, OBSERVED)


def _document_dns_ms(load: _Load) -> float | None:
    return next((e.phases.get("dns") for e in load.visit.entries if e.phases and e.phases.get("dns")), None)


def _os_cache(load: _Load) -> JourneyStep:
    name = load.name
    if name is None:
        return JourneyStep(OS_CACHE, [load.client], f"not asked: the URL names an address ({load.host})",
                           "the URL", DERIVED)
    if not name.stub_node:
        return JourneyStep(OS_CACHE, [load.client], f"{load.client} has no DNS cache of its own",
                           "the node's resolv.conf", UNSEEN)
    said = {CACHE: f"answered {name.name} from its cache",
            FORWARDED: f"did not hold {name.name}: asked {name.resolver or 'the resolver'}"}.get(
        name.os_cache, f"logged no query for {name.name} in this load")
    return JourneyStep(OS_CACHE, [name.stub_node], f"dnsmasq {said}", f"{name.stub_node}'s dnsmasq log",
                       OBSERVED, _document_dns_ms(load))


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _client_queries(load: _Load) -> list[dict]:
    wanted = _fqdn(load.host)
    return [p for p in load.dns if not p.get("response") and p.get("dst") in load.resolver_addresses
            and p.get("dport") == 53 and str(p.get("qname", "")).lower() == wanted]


def _upstream_steps(load: _Load, book: dict[str, str]) -> list[DnsStep]:
    """What the resolver asked other servers for the name (or, minimised, a parent of it), from
    the first query for it that reached the resolver in this load."""
    asked = _client_queries(load)
    if not asked:
        return []
    first = min(p["time"] for p in asked)
    after = [p for p in load.dns if p.get("time", 0) >= first]
    wanted = "." + _fqdn(load.host)
    return [s for s in steps_from_packets(after, load.resolver_addresses, book)
            if wanted.endswith("." + s.query.split()[0].lower().lstrip("."))]


def _resolver_reply(load: _Load) -> dict | None:
    asked = _client_queries(load)
    return next((p for p in load.dns if p.get("response") and p.get("src") in load.resolver_addresses
                 and any(q["id"] == p["id"] and q["src"] == p["dst"] for q in asked)), None)


def _not_asked(load: _Load) -> str:
    """Why the resolver (or the servers behind it) had no query for the name in this load."""
    if load.name is not None and load.name.os_cache == CACHE:
        return "not asked: answered from the OS cache"
    return f"not asked: no query for {load.host} reached {load.resolver}"


def _resolver_cache(load: _Load, upstream: list[DnsStep]) -> JourneyStep:
    if load.name is None:
        return JourneyStep(RESOLVER_CACHE, [], "not asked: the URL names an address", "the URL", DERIVED)
    if load.resolver is None:
        return JourneyStep(RESOLVER_CACHE, [], "no resolver's packets were recorded", "nothing", UNSEEN)
    evidence = f"{load.resolver}'s packets (udp 53)"
    asked = _client_queries(load)
    if not asked:
        return JourneyStep(RESOLVER_CACHE, [load.resolver], _not_asked(load), evidence, OBSERVED)
    reply = _resolver_reply(load)
    first = min(asked, key=lambda p: p["time"])
    ms = round((reply["time"] - first["time"]) * 1000, 1) if reply else None
    if reply is None:
        return JourneyStep(RESOLVER_CACHE, [load.resolver], f"asked {len(asked)} time(s); it never answered",
                           evidence, OBSERVED, None, True)
    if not upstream:
        return JourneyStep(RESOLVER_CACHE, [load.resolver], f"answered {load.host} from its cache "
                           f"({reply['rcode']})", evidence, OBSERVED, ms, reply["rcode"] != "NOERROR")
    servers = list(dict.fromkeys(s.server for s in upstream))
    return JourneyStep(RESOLVER_CACHE, [load.resolver],
                       f"did not hold {load.host}: asked {', '.join(servers)}; answered {reply['rcode']}",
                       evidence, OBSERVED, ms)


def dns_role(lab: Lab, node: str) -> str | None:
    """root, TLD or authoritative: a root server kind; a server of a one-label zone; of a deeper one."""
    if node not in lab.instance_names():
        return None
    instance = lab.instance(node)
    if registry.is_a(instance.kind, ROOT_SERVER):
        return ROOT
    zones = [zone for zone, spec in lab.spec.zones.items() if instance.node in spec.servers]
    if not zones:
        return None
    return TLD if any("." not in zone.strip(".") for zone in zones) else AUTHORITATIVE


def _dns_answer(step: DnsStep) -> str:
    if step.outcome == "referral":
        return f"a referral to {step.zone} ({', '.join(step.ns)})"
    if step.outcome == "answer":
        return "the answer " + ", ".join(a.split(maxsplit=1)[-1] for a in step.answer)
    return step.outcome


def _dns_server(load: _Load, upstream: list[DnsStep], role: str) -> JourneyStep:
    if load.name is None:
        return JourneyStep(role, [], "not asked: the URL names an address", "the URL", DERIVED)
    if load.resolver is None:
        return JourneyStep(role, [], "no resolver's packets were recorded", "nothing", UNSEEN)
    evidence = f"{load.resolver}'s packets (udp 53)"
    mine = [s for s in upstream if dns_role(load.lab, s.server) == role]
    if not mine:
        if not _client_queries(load):
            return JourneyStep(role, [], _not_asked(load), evidence, OBSERVED)
        if not upstream:
            return JourneyStep(role, [], "not asked: answered from the resolver's cache", evidence, OBSERVED)
        return JourneyStep(role, [], f"not asked: {load.resolver} held what it would have said", evidence, OBSERVED)
    answered = [s for s in mine if s.duration_ms is not None]
    nodes = list(dict.fromkeys(s.server for s in mine))
    if not answered:
        return JourneyStep(role, nodes, f"asked {len(mine)} time(s) ({', '.join(dict.fromkeys(s.query for s in mine))}): no reply", evidence,
                           OBSERVED, None, True)
    said = "; ".join(dict.fromkeys(f"{s.server} answered '{s.query}' with {_dns_answer(s)}" for s in answered))
    broken = all(s.outcome not in ("answer", "referral", "nodata") for s in answered)
    return JourneyStep(role, nodes, said, evidence, OBSERVED, answered[0].duration_ms, broken)


# --- the wire: routers, firewall, TCP, TLS -----------------------------------------------------

def _remotes(load: _Load) -> set[str]:
    return {e.remote.strip("[]") for e in load.visit.entries if e.remote}


def _client_syns(load: _Load) -> list[Packet]:
    """The client's SYNs of this load to the page's servers (the browser's remote addresses)."""
    remotes = _remotes(load)
    return [p for p in load.wire.get(load.client, []) if p.syn and p.direction == "Out" and p.dport == load.port
            and (not remotes or p.dst in remotes)]


def _is_firewall(load: _Load, node: str) -> bool:
    return node in load.lab.instance_names() and registry.is_a(load.lab.instance(node).kind, PACKET_FILTER)


def _hops(load: _Load, syns: list[Packet], firewalls: bool):
    """Each forwarding node's view of the load's first connection that it saw, in path order."""
    views = []
    for node, packets in load.wire.items():
        if node == load.client or _is_firewall(load, node) != firewalls:
            continue
        view = next((v for v in (hop_view(node, packets, s.seq) for s in syns if s.seq is not None) if v.seen), None)
        if view is not None:
            views.append(view)
    return sorted(views, key=lambda v: v.syn_in.time)


def _no_syn(load: _Load, name: str) -> JourneyStep:
    evidence = f"tcpdump on {load.client}"
    if not load.wire:
        return JourneyStep(name, [], "the path was not recorded", "nothing", UNSEEN)
    return JourneyStep(name, [], f"no connection: no SYN left {load.client} in this load", evidence, UNSEEN)


def _path_steps(load: _Load, syns: list[Packet]) -> list[JourneyStep]:
    if not syns:
        return [_no_syn(load, ROUTERS), _no_syn(load, FIREWALL)]
    return [_routers(load, syns), _firewall(load, syns)]


def _hop_words(view) -> str:
    if view.syn_out is None:
        return f"{view.node}: the SYN arrived and never left it"
    nat = view.nat()
    return f"{view.node} ({view.syn_in.interface} -> {view.syn_out.interface}{'; ' + nat if nat else ''})"


def _routers(load: _Load, syns: list[Packet]) -> JourneyStep:
    hops = _hops(load, syns, firewalls=False)
    routers = [n for n in load.wire if n != load.client and not _is_firewall(load, n)]
    evidence = f"tcpdump on {', '.join(routers)}" if routers else "no router was recorded"
    if not hops:
        return JourneyStep(ROUTERS, [], f"none of {len(routers)} router(s) saw the SYN", evidence,
                           OBSERVED if routers else UNSEEN, None, bool(routers) and not _answered(load, syns))
    stopped = next((v for v in hops if v.syn_out is None), None)
    ms = round((hops[-1].syn_in.time - syns[0].time) * 1000, 3)
    said = (f"{len(syns)} connection(s); the first's SYN crossed " + ", then ".join(_hop_words(v) for v in hops)
            + f"; it reached the last {ms:.3f} ms after leaving {load.client}")
    if load.not_running:
        said += f"; not running (the engine refused a command there): {', '.join(load.not_running)}"
    return JourneyStep(ROUTERS, [v.node for v in hops], said, evidence, OBSERVED, ms, stopped is not None)


def _firewall(load: _Load, syns: list[Packet]) -> JourneyStep:
    hops = _hops(load, syns, firewalls=True)
    decisions = _decisions(load, syns[0])
    nodes = list(dict.fromkeys([*(v.node for v in hops), *(d.firewall for d in decisions)]))
    stopped = [fw for fw in _path_firewalls(load, syns[0]) if fw in load.not_running]
    if stopped and not hops:
        return JourneyStep(FIREWALL, stopped, f"{', '.join(stopped)} on the path (the topology's routes) is not "
                           "running: no capture, no counters there", "the engine refused a command there",
                           OBSERVED, None, True)
    if not nodes:
        return JourneyStep(FIREWALL, [], "none on the path", "the topology's routes", DERIVED)
    parts = [_hop_words(v) for v in hops]
    span = f"over all {load.loads} loads of this browse" if load.loads > 1 else "during the load"
    for d in decisions:
        rose = d.rose.get(d.rule.name, 0)
        parts.append(f"rule {d.rule.name} ({d.action}) decided: its counter rose by {rose} {span}"
                     if d.confirmed else f"rule {d.rule.name} ({d.action}) computed; {d.mismatch}")
    blocked = any(d.action != "allow" and d.confirmed for d in decisions) or any(v.syn_out is None for v in hops)
    evidence = f"tcpdump and iptables counters on {', '.join(nodes)}"
    return JourneyStep(FIREWALL, nodes, "; ".join(parts), evidence, OBSERVED if hops or decisions else UNSEEN,
                       None, blocked)


def _flow_path(load: _Load, syn: Packet):
    """The connection's path by the topology's routes (None: its address is no node's)."""
    owner = next((i for i in load.lab.instances if syn.dst in {str(a) for a in i.all_addresses()}), None)
    if owner is None or load.client not in load.lab.instance_names():
        return None
    return flow_path(load.lab, load.lab.instance(load.client), owner, "tcp", load.port)


def _path_firewalls(load: _Load, syn: Packet) -> list[str]:
    path = _flow_path(load, syn)
    return [h.instance.name for h in path.hops if registry.is_a(h.kind, PACKET_FILTER)] if path else []


def _decisions(load: _Load, syn: Packet):
    """The firewalls' computed rules for the connection, confirmed by their counters."""
    path = _flow_path(load, syn) if load.counters else None
    if path is None:
        return []
    verdicts = []
    for verdict in computed_verdicts(load.lab, path):
        rows = load.counters.get(verdict.firewall)
        if rows is not None:
            verdicts.append(confirm(verdict, counters_from_rows(rows["before"]), counters_from_rows(rows["after"])))
    return verdicts


def _synack(load: _Load, syn: Packet) -> Packet | None:
    return next((p for p in load.wire.get(load.client, []) if p.flags == "S." and p.direction == "In"
                 and (p.src, p.sport, p.dst, p.dport) == (syn.dst, syn.dport, syn.src, syn.sport)), None)


def _answered(load: _Load, syns: list[Packet]) -> bool:
    return any(_synack(load, s) for s in syns)


def _first_with(load: _Load, phase: str):
    return next((e for e in load.visit.entries if e.phases and e.phases.get(phase, 0) > 0), None)


def _tcp_tls(load: _Load, syns: list[Packet]) -> list[JourneyStep]:
    evidence = f"tcpdump on {load.client}"
    if not load.wire:
        return _tcp_tls_by_the_browser(load)
    if not syns:
        return [_no_syn(load, TCP), _no_syn(load, TLS)]
    syn = syns[0]
    synack = _synack(load, syn)
    to = endpoint(syn.dst, syn.dport)
    if synack is None:
        tcp = JourneyStep(TCP, [load.client], f"SYN to {to} never answered ({len(syns)} tried)", evidence,
                          OBSERVED, None, True)
        return [tcp, JourneyStep(TLS, [], "no connection to shake hands on", evidence, UNSEEN)]
    tcp = JourneyStep(TCP, [load.client], f"{len(syns)} connection(s) to {to}; the first's SYN was "
                      f"answered (SYN-ACK) in {(synack.time - syn.time) * 1000:.3f} ms",
                      evidence, OBSERVED, round((synack.time - syn.time) * 1000, 3))
    return [tcp, _tls(load, syn, evidence)]


def _tcp_tls_by_the_browser(load: _Load) -> list[JourneyStep]:
    """Without the wire: the connection and handshake as Chromium timed them (ResourceTiming)."""
    entry = _first_with(load, "connect")
    if entry is None:
        unseen = "the path was not recorded and the browser timed no new connection"
        return [JourneyStep(TCP, [], unseen, CHROMIUM, UNSEEN), JourneyStep(TLS, [], unseen, CHROMIUM, UNSEEN)]
    tcp = JourneyStep(TCP, [load.client], f"a new connection to {entry.remote} for {entry.path}", CHROMIUM,
                      OBSERVED, entry.phases["connect"])
    if load.visit.url.startswith("http://"):
        return [tcp, JourneyStep(TLS, [], "not used: the URL is http://", "the URL", DERIVED)]
    ssl = entry.phases.get("ssl") or None
    tls = JourneyStep(TLS, [load.client] if ssl else [], f"handshake, then {entry.protocol or 'HTTP'}" if ssl
                      else "the browser timed no handshake", CHROMIUM, OBSERVED if ssl else UNSEEN, ssl)
    return [tcp, tls]


def _tls(load: _Load, syn: Packet, evidence: str) -> JourneyStep:
    if load.visit.url.startswith("http://"):
        return JourneyStep(TLS, [], "not used: the URL is http://", "the URL", DERIVED)
    wire = tls_on_the_wire(load.wire.get(load.client, []), syn)
    entry = _first_with(load, "ssl")
    version = next((e.protocol for e in load.visit.entries if e.protocol), "")
    if wire is None:
        if entry is None:
            return JourneyStep(TLS, [], "no handshake seen", evidence, UNSEEN)
        return JourneyStep(TLS, [load.client], f"handshake, then {version or 'HTTP'}", CHROMIUM, OBSERVED,
                           entry.phases["ssl"])
    total = round((wire.finished_at - wire.hello_at) * 1000, 3)
    said = (f"ClientHello to the client's Finished {total:.1f} ms (the server's flight came back after "
            f"{wire.server_ms:.1f} ms); then {version or 'HTTP'} (the browser's record)")
    return JourneyStep(TLS, [load.client], said, f"{evidence}; {CHROMIUM}", OBSERVED, total)


# --- the lab's servers -------------------------------------------------------------------------

def _lab_steps(load: _Load) -> list[JourneyStep]:
    records = [r for r in load.evidence if r.lb]
    if not records:
        none = "no request of this load reached a load balancer's log"
        return [JourneyStep(step, [], none, "the servers' logs", UNSEEN)
                for step in (LOAD_BALANCER, SERVER, DATABASE)]
    return [_balancer(records), _servers(records), _database(records)]


def _balancer(records: list[LabEvidence]) -> JourneyStep:
    lbs = list(dict.fromkeys(r.lb for r in records))
    chosen = list(dict.fromkeys(n for r in records for n in r.chosen))
    failed = [r for r in records if r.lb_status and r.lb_status >= 500]
    said = f"{len(records)} request(s) with their trace ids; sent to {', '.join(chosen) or 'no upstream'}"
    if failed:
        said += f"; {len(failed)} answered {failed[0].lb_status}"
    return JourneyStep(LOAD_BALANCER, lbs, said, f"{', '.join(lbs)}'s access log", OBSERVED, None,
                       bool(failed) and all(r.server is None for r in failed))


def _servers(records: list[LabEvidence]) -> JourneyStep:
    served = [r for r in records if r.server]
    nodes = list(dict.fromkeys(r.server for r in served))
    if not served:
        return JourneyStep(SERVER, [], "no server's log holds these trace ids", "the servers' logs",
                           UNSEEN, None, any(r.failed_at for r in records))
    said = ", ".join(f"{n} {sum(1 for r in served if r.server == n)} request(s)" for n in nodes)
    failed = [r for r in records if r.failed_at and r.failed_at != r.lb]
    if failed:
        said += f"; failed at {failed[0].failed_at}"
    return JourneyStep(SERVER, nodes, said, "their own log lines", OBSERVED, None, bool(failed))


def _database(records: list[LabEvidence]) -> JourneyStep:
    used = [r for r in records if r.db_queries]
    if not used:
        return JourneyStep(DATABASE, [], "no request of this load reached the database", "the servers' logs",
                           OBSERVED if any(r.server for r in records) else UNSEEN)
    nodes = list(dict.fromkeys(r.database or "?" for r in used))
    said = "; ".join(f"{r.db_queries} SQL statement(s) for {r.server}" for r in used)
    return JourneyStep(DATABASE, nodes, said, f"{', '.join(r.server for r in used)}'s own log line(s)",
                       OBSERVED, round(sum(r.db_ms or 0 for r in used), 3),
                       any(r.server_status and r.server_status >= 500 for r in used))
