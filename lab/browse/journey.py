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

from lab.browse.evidence import LabEvidence, reached_the_lab, windows
from lab.browse.har import NETWORK, REVALIDATED
from lab.browse.journey_model import (AUTHORITATIVE, BROWSER_CACHE, CHROMIUM, DATABASE, DERIVED, LOAD_BALANCER,
                                      NOT_REACHED, OBSERVED, OS_CACHE, RESOLVER_CACHE, ROOT, SERVER, STEPS, TLD,
                                      UNSEEN, Journey, JourneyStep, LoadRecord)
from lab.browse.journey_wire import client_syns, path_steps, tcp_tls
from lab.browse.onpath import wire_from_data
from lab.kinds import registry
from lab.kinds.registry import ROOT_SERVER
from lab.topology import Lab
from lab.trace.dns import DnsStep, steps_from_packets
from lab.trace.stub import CACHE, FORWARDED
from lab.trace.wire import DAY, Packet

__all__ = ["STEPS", "OBSERVED", "DERIVED", "NOT_REACHED", "UNSEEN", "Journey", "JourneyStep", "journeys",
           "journey_of", "dns_role"]


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
        load = LoadRecord(lab, result.client, host, visit, name, evidence,
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


def journey_of(load: LoadRecord, book: dict[str, str]) -> Journey:
    upstream = _upstream_steps(load, book)
    syns = client_syns(load)
    steps = [_browser_cache(load), _os_cache(load), _resolver_cache(load, upstream),
             *(_dns_server(load, upstream, role) for role in (ROOT, TLD, AUTHORITATIVE)),
             *path_steps(load, syns), *tcp_tls(load, syns), *_lab_steps(load)]
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

def _browser_cache(load: LoadRecord) -> JourneyStep:
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


def _document_dns_ms(load: LoadRecord) -> float | None:
    return next((e.phases.get("dns") for e in load.visit.entries if e.phases and e.phases.get("dns")), None)


def _os_cache(load: LoadRecord) -> JourneyStep:
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


def _client_queries(load: LoadRecord) -> list[dict]:
    wanted = _fqdn(load.host)
    return [p for p in load.dns if not p.get("response") and p.get("dst") in load.resolver_addresses
            and p.get("dport") == 53 and str(p.get("qname", "")).lower() == wanted]


def _upstream_steps(load: LoadRecord, book: dict[str, str]) -> list[DnsStep]:
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


def _resolver_reply(load: LoadRecord) -> dict | None:
    asked = _client_queries(load)
    return next((p for p in load.dns if p.get("response") and p.get("src") in load.resolver_addresses
                 and any(q["id"] == p["id"] and q["src"] == p["dst"] for q in asked)), None)


def _not_asked(load: LoadRecord) -> str:
    """Why the resolver (or the servers behind it) had no query for the name in this load."""
    if load.name is not None and load.name.os_cache == CACHE:
        return "not asked: answered from the OS cache"
    return f"not asked: no query for {load.host} reached {load.resolver}"


def _resolver_cache(load: LoadRecord, upstream: list[DnsStep]) -> JourneyStep:
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
    if reply is None and _name_resolved(load):
        # the capture lost the reply (a busy resolver's tcpdump can), yet the browser connected
        held = "answered from its cache" if not upstream else \
            f"did not hold {load.host}: asked {', '.join(dict.fromkeys(s.server for s in upstream))}"
        return JourneyStep(RESOLVER_CACHE, [load.resolver], f"{held}; its reply is missing from the capture "
                           "(the browser's record shows the name resolved)", evidence, OBSERVED)
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


def _name_resolved(load: LoadRecord) -> bool:
    """Did the browser reach an address for the page in this load (its record has a remote)?"""
    return any(e.remote for e in load.visit.entries)


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


def _dns_server(load: LoadRecord, upstream: list[DnsStep], role: str) -> JourneyStep:
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


# --- the lab's servers -------------------------------------------------------------------------

def _lab_steps(load: LoadRecord) -> list[JourneyStep]:
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
