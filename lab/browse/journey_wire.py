"""The journey's steps read from the wire: routers, firewall, TCP, TLS (pure).

tcpdump on the client gives this load's SYNs (to the addresses the browser connected to);
each router's and firewall's own capture is searched for them by sequence number (which the
home router's masquerade leaves alone): the SYN arriving, leaving again, or stopping there.
The firewall's rule is the one the topology's path computes, confirmed by its counters;
TCP and TLS are timed on the client's own packets (or, unrecorded, by Chromium).
"""

from __future__ import annotations

from lab.browse.journey_model import (CHROMIUM, DERIVED, FIREWALL, OBSERVED, ROUTERS, TCP, TLS, UNSEEN,
                                      JourneyStep, LoadRecord)
from lab.browse.onpath import counters_from_rows
from lab.firewall.explain import computed_verdicts, confirm
from lab.firewall.path import flow_path
from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.trace.wire import Packet, endpoint, hop_view, tls_on_the_wire


def _remotes(load: LoadRecord) -> set[str]:
    return {e.remote.strip("[]") for e in load.visit.entries if e.remote}


def client_syns(load: LoadRecord) -> list[Packet]:
    """The client's SYNs of this load to the page's servers (the browser's remote addresses)."""
    remotes = _remotes(load)
    return [p for p in load.wire.get(load.client, []) if p.syn and p.direction == "Out" and p.dport == load.port
            and (not remotes or p.dst in remotes)]


def _is_firewall(load: LoadRecord, node: str) -> bool:
    return node in load.lab.instance_names() and registry.is_a(load.lab.instance(node).kind, PACKET_FILTER)


def _hops(load: LoadRecord, syns: list[Packet], firewalls: bool):
    """Each forwarding node's view of the load's first connection that it saw, in path order."""
    views = []
    for node, packets in load.wire.items():
        if node == load.client or _is_firewall(load, node) != firewalls:
            continue
        view = next((v for v in (hop_view(node, packets, s.seq) for s in syns if s.seq is not None) if v.seen), None)
        if view is not None:
            views.append(view)
    return sorted(views, key=lambda v: v.syn_in.time)


def _no_syn(load: LoadRecord, name: str) -> JourneyStep:
    evidence = f"tcpdump on {load.client}"
    if not load.wire:
        return JourneyStep(name, [], "the path was not recorded", "nothing", UNSEEN)
    return JourneyStep(name, [], f"no connection: no SYN left {load.client} in this load", evidence, UNSEEN)


def path_steps(load: LoadRecord, syns: list[Packet]) -> list[JourneyStep]:
    if not syns:
        return [_no_syn(load, ROUTERS), _no_syn(load, FIREWALL)]
    return [_routers(load, syns), _firewall(load, syns)]


def _hop_words(view) -> str:
    if view.syn_out is None:
        return f"{view.node}: the SYN arrived and never left it"
    nat = view.nat()
    return f"{view.node} ({view.syn_in.interface} -> {view.syn_out.interface}{'; ' + nat if nat else ''})"


def _routers(load: LoadRecord, syns: list[Packet]) -> JourneyStep:
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


def _firewall(load: LoadRecord, syns: list[Packet]) -> JourneyStep:
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


def _flow_path(load: LoadRecord, syn: Packet):
    """The connection's path by the topology's routes (None: its address is no node's)."""
    owner = next((i for i in load.lab.instances if syn.dst in {str(a) for a in i.all_addresses()}), None)
    if owner is None or load.client not in load.lab.instance_names():
        return None
    return flow_path(load.lab, load.lab.instance(load.client), owner, "tcp", load.port)


def _path_firewalls(load: LoadRecord, syn: Packet) -> list[str]:
    path = _flow_path(load, syn)
    return [h.instance.name for h in path.hops if registry.is_a(h.kind, PACKET_FILTER)] if path else []


def _decisions(load: LoadRecord, syn: Packet):
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


def _synack(load: LoadRecord, syn: Packet) -> Packet | None:
    return next((p for p in load.wire.get(load.client, []) if p.flags == "S." and p.direction == "In"
                 and (p.src, p.sport, p.dst, p.dport) == (syn.dst, syn.dport, syn.src, syn.sport)), None)


def _answered(load: LoadRecord, syns: list[Packet]) -> bool:
    return any(_synack(load, s) for s in syns)


def _first_with(load: LoadRecord, phase: str):
    return next((e for e in load.visit.entries if e.phases and e.phases.get(phase, 0) > 0), None)


def tcp_tls(load: LoadRecord, syns: list[Packet]) -> list[JourneyStep]:
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


def _tcp_tls_by_the_browser(load: LoadRecord) -> list[JourneyStep]:
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


def _tls(load: LoadRecord, syn: Packet, evidence: str) -> JourneyStep:
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
