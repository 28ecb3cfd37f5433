"""Autonomous systems: who belongs to which AS, who speaks BGP to whom, and how.

Pure facts derived from the topology, shared by the planner (FRR configs), the
checks of the file and the trace. A router with `as:` is routed by FRR; two
such routers on one network speak eBGP when their ASes differ, and every pair of
routers of one AS speaks iBGP (OSPF carries the AS's own networks between them).

A dual-stack lab (networks with `subnet6:`) gets every session twice, one per family: IPv6
routes go over a session between the two routers' IPv6 addresses, so each family's
reachability is proved by its own session (see lab/plan/frr.py for why not one session).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from lab.topology.lab import Instance, Lab
from lab.topology.model import FORWARDING_KINDS

CUSTOMER, PEER, PROVIDER, INTERNAL = "customer", "peer", "provider", "internal"
# Preference of a route by whom it came from, when the topology says nothing:
# a customer pays, a peer is free, a provider costs (the usual economics).
DEFAULT_LOCAL_PREF = {CUSTOMER: 200, PEER: 150, PROVIDER: 100}


@dataclass(frozen=True)
class Session:
    """One BGP session as seen from one router."""

    neighbor: str               # the other router's instance name
    address: IPv4Address | IPv6Address   # the address this router connects to (its family: the session's)
    remote_as: int
    relation: str               # what the neighbour's AS is to ours: customer, peer, provider, internal
    network: str                # the network the session runs over (eBGP) or the neighbour's AS network
    local_pref: int | None = None
    prepend: int = 0
    route_server_client: bool = False   # we are a route server and the neighbour a member (transparent)
    to_route_server: bool = False       # the neighbour is a route server: paths from it start with another AS

    @property
    def family(self) -> int:
        return self.address.version


def as_of(lab: Lab, node: str) -> str | None:
    """The AS a router node belongs to (None: a statically routed node)."""
    spec = lab.spec.nodes[node]
    return getattr(spec, "as_", None) if spec.kind in FORWARDING_KINDS else None


def is_route_server(lab: Lab, node: str) -> bool:
    return bool(getattr(lab.spec.nodes[node], "route_server", False)) and as_of(lab, node) is not None


def route_server_networks(lab: Lab) -> set[str]:
    """Shared networks with a route server: their members peer with it, not with each other."""
    return {network for name in lab.spec.nodes if is_route_server(lab, name)
            for network in lab.spec.nodes[name].networks}


def routed_by_frr(lab: Lab, instance: Instance) -> bool:
    return as_of(lab, instance.node) is not None


def as_networks(lab: Lab, system: str) -> list[str]:
    """Networks an AS owns (and announces), in file order."""
    return [name for name, net in lab.spec.networks.items() if net.as_ == system]


def relation(lab: Lab, ours: str, theirs: str) -> str:
    """What AS theirs is to AS ours."""
    if ours == theirs:
        return INTERNAL
    systems = lab.spec.autonomous_systems
    if theirs in systems[ours].providers:
        return PROVIDER
    if ours in systems[theirs].providers:
        return CUSTOMER
    return PEER


def addresses_of(instance: Instance, family: int):
    """network -> the instance's address of that family (IPv6: networks with a prefix only)."""
    return instance.addresses if family == 4 else instance.addresses6


def _ibgp_address(lab: Lab, other: Instance, system: str, family: int) -> tuple[IPv4Address, str] | None:
    for network in as_networks(lab, system):
        if network in addresses_of(other, family):
            return addresses_of(other, family)[network], network
    return None


def sessions(lab: Lab, instance: Instance, family: int = 4) -> list[Session]:
    """Every BGP session of one router for one address family (4 or 6), eBGP first, in a
    stable order. IPv6 sessions exist where both ends have IPv6 addresses."""
    ours = as_of(lab, instance.node)
    if ours is None:
        return []
    tweaks = lab.spec.nodes[instance.node].bgp
    with_server = route_server_networks(lab)
    ebgp, ibgp = [], []
    for other in lab.instances:
        theirs = as_of(lab, other.node) if other.name != instance.name else None
        if theirs is None:
            continue
        number = lab.spec.autonomous_systems[theirs].number
        if theirs == ours:
            found = _ibgp_address(lab, other, ours, family)
            if found:
                ibgp.append(Session(other.name, found[0], number, INTERNAL, found[1]))
            continue
        tweak = tweaks.get(other.node)
        serving, served = is_route_server(lab, instance.node), is_route_server(lab, other.node)
        for network, address in addresses_of(other, family).items():
            if network not in addresses_of(instance, family):
                continue
            if network in with_server and not (serving or served):
                continue   # two members of an exchange with a route server: they hear each other through it
            ebgp.append(Session(other.name, address, number, relation(lab, ours, theirs), network,
                                tweak.local_pref if tweak else None, tweak.prepend if tweak else 0,
                                route_server_client=serving and not served,
                                to_route_server=served and not serving))
    return ebgp + ibgp


def prefix_of(lab: Lab, network: str, family: int) -> IPv4Network | IPv6Network | None:
    """A network's prefix in one family (None: an IPv4-only network asked for IPv6)."""
    spec = lab.spec.networks[network]
    return spec.subnet if family == 4 else spec.subnet6


def announced(lab: Lab, instance: Instance, family: int = 4) -> list[IPv4Network | IPv6Network]:
    """The prefixes a router announces in one family: its AS's networks."""
    system = as_of(lab, instance.node)
    prefixes = [prefix_of(lab, name, family) for name in as_networks(lab, system)] if system else []
    return [prefix for prefix in prefixes if prefix is not None]


def ospf_networks(lab: Lab, instance: Instance, family: int = 4) -> list[IPv4Network | IPv6Network]:
    """The router's networks that belong to its own AS: OSPF (IPv6: OSPFv3) runs on them."""
    return [prefix_of(lab, name, family) for name in ospf_network_names(lab, instance, family)]


def ospf_network_names(lab: Lab, instance: Instance, family: int = 4) -> list[str]:
    system = as_of(lab, instance.node)
    return [name for name in addresses_of(instance, family)
            if system and lab.spec.networks[name].as_ == system]


def as_number_of_address(lab: Lab, address: IPv4Address | IPv6Address) -> int | None:
    """The AS number owning the network an address is in (for a trace's hops)."""
    for network in lab.spec.networks.values():
        prefix = network.subnet if address.version == 4 else network.subnet6
        if network.as_ and prefix is not None and address in prefix:
            return lab.spec.autonomous_systems[network.as_].number
    return None


def route_prefix(lab: Lab, route: str, family: int | None = None) -> IPv4Network | IPv6Network | None:
    """A route check's subject: a network's prefix in the family asked (IPv4 unless 6), or a
    prefix as written (None: neither, or a network without an IPv6 prefix asked for one)."""
    if route in lab.spec.networks:
        return prefix_of(lab, route, 6 if family == 6 else 4)
    try:
        prefix = ip_network(route)
    except ValueError:
        return None
    return prefix if family is None or prefix.version == family else None


def expected_as_path(lab: Lab, expect) -> tuple[int, ...] | None:
    """A route check's `expect` as AS numbers: a list or a text of AS names or numbers
    (None when an item is neither)."""
    items = expect if isinstance(expect, list) else str(expect).replace(",", " ").split()
    numbers = []
    for item in items:
        text = str(item).removeprefix("AS") if str(item).startswith("AS") and str(item)[2:].isdigit() else str(item)
        if text in lab.spec.autonomous_systems:
            numbers.append(lab.spec.autonomous_systems[text].number)
        elif text.isascii() and text.isdigit():
            numbers.append(int(text))
        else:
            return None
    return tuple(numbers)
