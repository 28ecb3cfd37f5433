"""FRR configuration of a router in an autonomous system, rendered from the topology.

Two files under /lab/ (services/router/lab-frr-start copies them to /etc/frr):
`daemons` (which FRR daemons run) and `frr.conf` (what they do). Nothing is
written by hand: sessions come from lab.topology.autonomy, policy from the
relations between ASes, the usual export rules ("Gao-Rexford"):

- every route learnt over eBGP is tagged with one community saying whom it came
  from (customer, peer or provider) and gets that relation's local preference;
- routes from peers and providers are announced only to customers: an AS never
  carries traffic between two of its providers or peers for free (no route leak);
- own routes and customers' routes go to everybody, prepended when asked.

A route server (a router with `route_server: true` on an exchange's network) is
the exception: it passes every member's routes to the others unchanged, as
`route-server-client`s, so members see each other as peers, not it.
"""

from __future__ import annotations

from lab.topology.autonomy import (CUSTOMER, DEFAULT_LOCAL_PREF, INTERNAL, PEER, PROVIDER, Session,
                                   announced, as_of, ospf_networks, sessions)
from lab.topology.lab import Instance, Lab

DAEMONS_FILE = "frr-daemons"
CONFIG_FILE = "frr.conf"
# Lab-internal tags (replaced on every eBGP import, so they never mean anything outside).
RELATION_COMMUNITY = {CUSTOMER: "64512:1", PEER: "64512:2", PROVIDER: "64512:3"}
NOT_FOR_UPSTREAM = "LAB-FROM-PEER-OR-PROVIDER"
# Fast enough to watch converge, slow enough for 2 shared cores: keepalive 3 s, hold 9 s.
KEEPALIVE, HOLD = 3, 9
# An eBGP neighbour whose link dies behind a switch (the far end's interface stays up) is only
# noticed when the hold timer runs out; BFD notices in BFD_INTERVAL_MS * BFD_MULTIPLIER.
BFD_PROFILE, BFD_INTERVAL_MS, BFD_MULTIPLIER = "lab-link", 300, 5


def render_frr(lab: Lab, instance: Instance) -> dict[str, str]:
    """{path under /lab: content}; empty for a statically routed node."""
    if as_of(lab, instance.node) is None:
        return {}
    ospf = bool(ospf_networks(lab, instance))
    return {DAEMONS_FILE: render_daemons(ospf), CONFIG_FILE: render_config(lab, instance)}


def render_daemons(ospf: bool) -> str:
    return "".join([
        "# rendered by lab (lab/plan/frr.py)\n",
        "zebra=yes\n", "bgpd=yes\n", f"ospfd={'yes' if ospf else 'no'}\n", "bfdd=yes\n",
        "vtysh_enable=yes\n",
        'zebra_options="  -A 127.0.0.1 -s 90000000"\n',
        'bgpd_options="   -A 127.0.0.1"\n',
        'ospfd_options="  -A 127.0.0.1"\n',
        'bfdd_options="   -A 127.0.0.1"\n',
    ])


def _neighbor_name(session: Session) -> str:
    return session.neighbor.upper().replace("-", "_")


def render_config(lab: Lab, instance: Instance) -> str:
    system = as_of(lab, instance.node)
    number = lab.spec.autonomous_systems[system].number
    router_id = instance.first_address
    all_sessions = sessions(lab, instance)
    lines = [f"! rendered by lab (lab/plan/frr.py): {instance.name}, AS{number} ({system})",
             "frr defaults traditional", f"hostname {instance.name}", "log stdout informational",
             "service integrated-vtysh-config", "!"]
    lines += _communities()
    lines += _bfd()
    lines += _bgp(lab, instance, number, router_id, all_sessions)
    lines += _ospf(lab, instance, router_id)
    for session in all_sessions:
        if session.relation != INTERNAL and not session.route_server_client:
            lines += _route_maps(session, number)
    lines += ["line vty", "!", ""]
    return "\n".join(lines)


def _communities() -> list[str]:
    return [f"bgp community-list standard {NOT_FOR_UPSTREAM} permit {RELATION_COMMUNITY[PEER]}",
            f"bgp community-list standard {NOT_FOR_UPSTREAM} permit {RELATION_COMMUNITY[PROVIDER]}", "!"]


def _bfd() -> list[str]:
    return ["bfd", f" profile {BFD_PROFILE}", f"  detect-multiplier {BFD_MULTIPLIER}",
            f"  receive-interval {BFD_INTERVAL_MS}", f"  transmit-interval {BFD_INTERVAL_MS}", " !", "!"]


def _bgp(lab: Lab, instance: Instance, number: int, router_id, all_sessions: list[Session]) -> list[str]:
    lines = [f"router bgp {number}", f" bgp router-id {router_id}", " bgp log-neighbor-changes",
             " no bgp default ipv4-unicast", f" timers bgp {KEEPALIVE} {HOLD}"]
    if any(session.route_server_client for session in all_sessions):
        # FRR 8.4 holds eBGP routes without a route-map ("(Policy)"), even with traditional
        # defaults; a route server has no policy of its own to give them
        lines.append(" no bgp ebgp-requires-policy")
    for session in all_sessions:
        lines += [f" neighbor {session.address} remote-as {session.remote_as}",
                  f" neighbor {session.address} description {session.neighbor} ({_role(session)})"]
        if session.relation == INTERNAL:
            own = instance.addresses.get(session.network)
            if own is None:   # reach the neighbour's AS network through OSPF, from our first AS address
                own = next(iter(_own_as_addresses(lab, instance)), instance.first_address)
            lines.append(f" neighbor {session.address} update-source {own}")
        else:
            lines.append(f" neighbor {session.address} bfd profile {BFD_PROFILE}")
        if session.to_route_server:   # a transparent route server's paths start with the member's AS
            lines.append(f" no neighbor {session.address} enforce-first-as")
    lines += [" !", " address-family ipv4 unicast"]
    for prefix in announced(lab, instance):
        lines.append(f"  network {prefix}")
    for session in all_sessions:
        address = session.address
        lines += [f"  neighbor {address} activate", f"  neighbor {address} send-community",
                  f"  neighbor {address} advertisement-interval 0"]
        if session.relation == INTERNAL:
            lines.append(f"  neighbor {address} next-hop-self")
        elif session.route_server_client:
            # transparent: neither our AS in the path nor us as next hop, and no policy of ours
            lines.append(f"  neighbor {address} route-server-client")
        else:
            name = _neighbor_name(session)
            lines += [f"  neighbor {address} route-map FROM-{name} in",
                      f"  neighbor {address} route-map TO-{name} out"]
    lines += [" exit-address-family", "!"]
    return lines


def _role(session: Session) -> str:
    """What `lab routes` shows beside a neighbour: its relation, or that a route server serves it."""
    return "route-server client" if session.route_server_client else session.relation


def _own_as_addresses(lab: Lab, instance: Instance):
    system = as_of(lab, instance.node)
    return [address for network, address in instance.addresses.items()
            if lab.spec.networks[network].as_ == system]


def _ospf(lab: Lab, instance: Instance, router_id) -> list[str]:
    networks = ospf_networks(lab, instance)
    if not networks:
        return []
    return ["router ospf", f" ospf router-id {router_id}",
            *(f" network {subnet} area 0" for subnet in networks), "!"]


def _route_maps(session: Session, number: int) -> list[str]:
    """Import: tag with the relation, set the preference. Export: the usual rules, then prepend."""
    name = _neighbor_name(session)
    preference = session.local_pref if session.local_pref is not None else DEFAULT_LOCAL_PREF[session.relation]
    lines = [f"route-map FROM-{name} permit 10",
             f" set community {RELATION_COMMUNITY[session.relation]}",
             f" set local-preference {preference}", "!"]
    sequence = 10
    if session.relation in (PEER, PROVIDER):
        lines += [f"route-map TO-{name} deny {sequence}", f" match community {NOT_FOR_UPSTREAM}", "!"]
        sequence += 10
    lines.append(f"route-map TO-{name} permit {sequence}")
    if session.prepend:
        lines.append(" set as-path prepend " + " ".join([str(number)] * session.prepend))
    lines.append("!")
    return lines
