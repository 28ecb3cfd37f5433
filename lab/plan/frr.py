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

IPv6 (networks with `subnet6:`) is routed beside IPv4, by the same rules:
- inside an AS, OSPFv3 (ospf6d) on the AS's networks, as OSPFv2 does for IPv4;
- between routers, a second BGP session over the two routers' IPv6 addresses carrying
  `address-family ipv6 unicast`, with the same export route-maps (TO-...) as IPv4's.
  Why not IPv6 prefixes over the IPv4 session (multiprotocol BGP with IPv6 next hops)?
  FRR 8.4 would then take the next hop from whatever global IPv6 address the session's
  interface has, a route server would have none of its members' to pass on unchanged,
  and a broken IPv6 path would stay invisible behind an established IPv4 session. With
  one session per family each family's state is FRR's own answer (`show bgp summary`).
- IPv6 sessions on a shared link also send the sender's link-local next hop, which the
  kernel would otherwise route through (fe80::..., nameless to a trace): every IPv6
  import sets `ipv6 next-hop prefer-global`, so the routes name the router's lab address.
ospf6d names interfaces, which only exist once the engine attached the networks: the
config says `interface LABIF[ADDRESS]` and lab-frr-start writes the name of the interface
holding ADDRESS in its place.
"""

from __future__ import annotations

from lab.topology.autonomy import (CUSTOMER, DEFAULT_LOCAL_PREF, INTERNAL, PEER, PROVIDER, Session,
                                   addresses_of, announced, as_of, ospf_network_names, ospf_networks, sessions)
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
# Replaced by lab-frr-start with the interface that holds the address (services/router).
INTERFACE_PLACEHOLDER = "LABIF[{address}]"
# The maps of an iBGP session in IPv6: only next hops (no policy inside an AS). FRR 8.4's
# `next-hop-self` leaves an eBGP-learnt IPv6 route's next hop as it came (seen: isp-a-edge got
# Transit's address, unreachable inside ISP A), so the export map sets our own address.
INTERNAL_V6_MAP, INTERNAL_V6_EXPORT = "FROM-INTERNAL-V6", "TO-INTERNAL-V6"


def render_frr(lab: Lab, instance: Instance) -> dict[str, str]:
    """{path under /lab: content}; empty for a statically routed node."""
    if as_of(lab, instance.node) is None:
        return {}
    ospf, ospf6 = bool(ospf_networks(lab, instance)), bool(ospf_networks(lab, instance, 6))
    return {DAEMONS_FILE: render_daemons(ospf, ospf6), CONFIG_FILE: render_config(lab, instance)}


def render_daemons(ospf: bool, ospf6: bool = False) -> str:
    return "".join([
        "# rendered by lab (lab/plan/frr.py)\n",
        "zebra=yes\n", "bgpd=yes\n", f"ospfd={'yes' if ospf else 'no'}\n",
        f"ospf6d={'yes' if ospf6 else 'no'}\n", "bfdd=yes\n",
        "vtysh_enable=yes\n",
        'zebra_options="  -A 127.0.0.1 -s 90000000"\n',
        'bgpd_options="   -A 127.0.0.1"\n',
        'ospfd_options="  -A 127.0.0.1"\n',
        'ospf6d_options=" -A ::1"\n',
        'bfdd_options="   -A 127.0.0.1"\n',
    ])


def _neighbor_name(session: Session) -> str:
    return session.neighbor.upper().replace("-", "_")


def render_config(lab: Lab, instance: Instance) -> str:
    system = as_of(lab, instance.node)
    number = lab.spec.autonomous_systems[system].number
    router_id = instance.first_address
    all_sessions = sessions(lab, instance) + sessions(lab, instance, 6)
    lines = [f"! rendered by lab (lab/plan/frr.py): {instance.name}, AS{number} ({system})",
             "frr defaults traditional", f"hostname {instance.name}", "log stdout informational",
             "service integrated-vtysh-config", "!"]
    lines += _communities()
    lines += _bfd()
    lines += _bgp(lab, instance, number, router_id, all_sessions)
    lines += _ospf(lab, instance, router_id)
    lines += _ospf6(lab, instance, router_id)
    lines += _all_route_maps(all_sessions, number)
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
                  f" neighbor {session.address} description {session.neighbor} ({_role(session)})",
                  # a neighbour's setting, not an address family's: inside one, FRR's config reader
                  # would climb back to `router bgp` and read the family's next lines as IPv4's
                  f" neighbor {session.address} advertisement-interval 0"]
        if session.relation == INTERNAL:
            lines.append(f" neighbor {session.address} update-source {_update_source(lab, instance, session)}")
        else:
            lines.append(f" neighbor {session.address} bfd profile {BFD_PROFILE}")
        if session.to_route_server:   # a transparent route server's paths start with the member's AS
            lines.append(f" no neighbor {session.address} enforce-first-as")
    for family in (4, 6):
        lines += _address_family(lab, instance, family, [s for s in all_sessions if s.family == family])
    lines.append("!")
    return lines


def _update_source(lab: Lab, instance: Instance, session: Session):
    """Our address for an iBGP session: on the neighbour's network, else our first address in
    the AS (OSPF reaches the neighbour's), in the session's family."""
    own = addresses_of(instance, session.family)
    if session.network in own:
        return own[session.network]
    mine = [own[name] for name in own if lab.spec.networks[name].as_ == as_of(lab, instance.node)]
    return mine[0] if mine else next(iter(own.values()))


def _address_family(lab: Lab, instance: Instance, family: int, family_sessions: list[Session]) -> list[str]:
    prefixes = announced(lab, instance, family)
    if family == 6 and not (prefixes or family_sessions):
        return []
    lines = [" !", f" address-family ipv{family} unicast"]
    lines += [f"  network {prefix}" for prefix in prefixes]
    suffix = "-V6" if family == 6 else ""
    for session in family_sessions:
        address = session.address
        lines += [f"  neighbor {address} activate", f"  neighbor {address} send-community"]
        if session.relation == INTERNAL:
            lines.append(f"  neighbor {address} next-hop-self")
            if family == 6:
                lines += [f"  neighbor {address} route-map {INTERNAL_V6_MAP} in",
                          f"  neighbor {address} route-map {INTERNAL_V6_EXPORT} out"]
        elif session.route_server_client:
            # transparent: neither our AS in the path nor us as next hop, and no policy of ours
            lines.append(f"  neighbor {address} route-server-client")
        else:
            name = _neighbor_name(session)
            lines += [f"  neighbor {address} route-map FROM-{name}{suffix} in",
                      f"  neighbor {address} route-map TO-{name} out"]
    lines.append(" exit-address-family")
    return lines


def _role(session: Session) -> str:
    """What `lab routes` shows beside a neighbour: its relation, or that a route server serves it."""
    return "route-server client" if session.route_server_client else session.relation


def _ospf(lab: Lab, instance: Instance, router_id) -> list[str]:
    networks = ospf_networks(lab, instance)
    if not networks:
        return []
    return ["router ospf", f" ospf router-id {router_id}",
            *(f" network {subnet} area 0" for subnet in networks), "!"]


def _ospf6(lab: Lab, instance: Instance, router_id) -> list[str]:
    """OSPFv3 on the router's AS networks that have an IPv6 prefix (its interfaces, by address)."""
    names = ospf_network_names(lab, instance, 6)
    if not names:
        return []
    lines = []
    for name in names:
        address = instance.addresses6[name]
        lines += [f"interface {INTERFACE_PLACEHOLDER.format(address=address)}", " ipv6 ospf6 area 0", "!"]
    return lines + ["router ospf6", f" ospf6 router-id {router_id}", "!"]


def _all_route_maps(all_sessions: list[Session], number: int) -> list[str]:
    """Per neighbour router: an import map per family (IPv6's adds the next-hop choice) and
    one export map both families share, so the export rules cannot differ between them."""
    lines, done = [], set()
    for session in all_sessions:
        name = _neighbor_name(session)
        if session.relation == INTERNAL or session.route_server_client or name in done:
            continue
        done.add(name)
        families = {s.family for s in all_sessions if _neighbor_name(s) == name}
        if 4 in families:
            lines += _import_map(session, f"FROM-{name}", [])
        if 6 in families:
            lines += _import_map(session, f"FROM-{name}-V6", [" set ipv6 next-hop prefer-global"])
        lines += _export_map(session, number)
    if any(s.relation == INTERNAL and s.family == 6 for s in all_sessions):
        lines += [f"route-map {INTERNAL_V6_MAP} permit 10", " set ipv6 next-hop prefer-global", "!",
                  f"route-map {INTERNAL_V6_EXPORT} permit 10", " set ipv6 next-hop peer-address", "!"]
    return lines


def _import_map(session: Session, map_name: str, extra: list[str]) -> list[str]:
    """Import: tag with the relation, set the preference."""
    preference = session.local_pref if session.local_pref is not None else DEFAULT_LOCAL_PREF[session.relation]
    return [f"route-map {map_name} permit 10", f" set community {RELATION_COMMUNITY[session.relation]}",
            f" set local-preference {preference}", *extra, "!"]


def _export_map(session: Session, number: int) -> list[str]:
    """Export: the usual rules, then prepend."""
    name = _neighbor_name(session)
    lines = []
    sequence = 10
    if session.relation in (PEER, PROVIDER):
        lines += [f"route-map TO-{name} deny {sequence}", f" match community {NOT_FOR_UPSTREAM}", "!"]
        sequence += 10
    lines.append(f"route-map TO-{name} permit {sequence}")
    if session.prepend:
        lines.append(" set as-path prepend " + " ".join([str(number)] * session.prepend))
    lines.append("!")
    return lines
