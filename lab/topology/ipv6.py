"""IPv6 beside IPv4: the types a topology writes (`subnet6:` on a network, `ip6:` on a node)
and the checks of what they mean.

A network's IPv6 prefix is a /64, as every IPv6 LAN is (SLAAC and most tools assume it),
from the unique local range fc00::/7 or the documentation range 2001:db8::/32, so a lab
never uses addresses someone routes on the real Internet. A node gets, on each network
that has a prefix, the address with the same host part as its IPv4 address there (198.18.0.13
on 198.18.0.0/24 is fd00:0:0:1::d on fd00:0:0:1::/64), unless it names one with `ip6:`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from lab.topology.names import replica_names
from lab.topology.parsing import parse_network, shown

if TYPE_CHECKING:
    from lab.topology.checks import Checker

PREFIX_LENGTH = 64
ALLOWED_RANGES = (IPv6Network("fc00::/7"), IPv6Network("2001:db8::/32"))


def _parse_subnet6(value: Any) -> Any:
    return parse_network(value, IPv6Network, "an IPv6 prefix", "fd00:0:10::/64")


def _parse_address6(value: Any) -> Any:
    try:
        if isinstance(value, str):
            return IPv6Address(value)
    except ValueError:
        pass
    raise ValueError(f"{shown(value)} is not an IPv6 address: write it like fd00:0:10::a")


Subnet6 = Annotated[IPv6Network, BeforeValidator(_parse_subnet6),
                    WithJsonSchema({"type": "string", "format": "ipv6-network"})]
Address6 = Annotated[IPv6Address, BeforeValidator(_parse_address6),
                     WithJsonSchema({"type": "string", "format": "ipv6"})]


def _as_64(prefix: IPv6Network) -> IPv6Network:
    if prefix.prefixlen > PREFIX_LENGTH:
        return prefix.supernet(new_prefix=PREFIX_LENGTH)
    return IPv6Network(f"{prefix.network_address}/{PREFIX_LENGTH}")


def same_host(address: IPv4Address, subnet: IPv4Network, prefix6: IPv6Network) -> IPv6Address:
    """The IPv6 address with the host part `address` has in `subnet`."""
    return prefix6.network_address + (int(address) - int(subnet.network_address))


def check_ipv6(checker: "Checker") -> None:
    """Prefixes: /64, in a lab range, not overlapping; `ip6:` addresses: on a network the node
    is on that has a prefix, inside it, a host address, nobody else's."""
    spec = checker.spec
    seen: list[tuple[str, IPv6Network]] = []
    for name, network in spec.networks.items():
        prefix = network.subnet6
        if prefix is None:
            continue
        path = ("networks", name, "subnet6")
        if prefix.prefixlen != PREFIX_LENGTH:
            checker.error(path, f"{prefix} is a /{prefix.prefixlen}: a lab network's IPv6 prefix is a "
                          f"/64, like {_as_64(prefix)}")
        if not any(prefix.subnet_of(allowed) for allowed in ALLOWED_RANGES if prefix.prefixlen >= allowed.prefixlen):
            checker.error(path, f"{prefix} is not a lab prefix: use a unique local prefix (fd00::/8, "
                          "like fd00:0:10::/64) or the documentation range 2001:db8::/32")
        for other_name, other in seen:
            if prefix.overlaps(other):
                checker.error(path, f"{prefix} overlaps network '{other_name}' ({other}); give each "
                              "network its own prefix")
        seen.append((name, prefix))
    _check_explicit_addresses(checker)


def _check_explicit_addresses(checker: "Checker") -> None:
    spec = checker.spec
    owners: dict[IPv6Address, str] = {}
    for name, node in spec.nodes.items():
        count = getattr(node, "replicas", 1)
        for net_name, address in node.ip6.items():
            path = ("nodes", name, "ip6", net_name)
            network = spec.networks.get(net_name)
            if net_name not in node.networks or network is None:
                checker.error(path, f"'{name}' is not on network '{net_name}': ip6 gives addresses on "
                              f"the node's own networks ({', '.join(node.networks)})", at_key=True)
                continue
            if network.subnet6 is None:
                checker.error(path, f"network '{net_name}' has no IPv6 prefix: add `subnet6:` to it, "
                              "or leave this address out", at_key=True)
                continue
            for offset in range(count):
                label = name if count == 1 else f"{name}-{offset + 1}"
                mine = address + offset
                if mine not in network.subnet6:
                    checker.error(path, f"{mine} (for {label}) is outside the prefix of network '{net_name}' "
                                  f"({network.subnet6}): pick an address inside it or leave it out")
                    break
                if mine == network.subnet6.network_address:
                    checker.error(path, f"{mine} is the subnet-router anycast address of "
                                  f"{network.subnet6}: pick a host address")
                elif mine in owners and owners[mine] != label:
                    checker.error(path, f"{mine} is already used by '{owners[mine]}': every node needs "
                                  "its own address")
                else:
                    owners[mine] = label


def allocate6(spec, addresses: dict, gateways: dict) -> tuple[dict, dict, list[tuple[tuple, str]]]:
    """IPv6 addresses per instance and network (explicit `ip6:`, else the IPv4 host part), the
    engine gateway's per network (its IPv4 host part), and clashes as (path, message)."""
    result: dict[str, dict[str, IPv6Address]] = {}
    owners: dict[IPv6Address, str] = {}
    clashes = []
    for name, node in spec.nodes.items():
        for index, instance in enumerate(replica_names(name, getattr(node, "replicas", 1))):
            mine = result.setdefault(instance, {})
            for net in node.networks:
                network = spec.networks[net]
                if network.subnet6 is None:
                    continue
                explicit = node.ip6.get(net)
                address = explicit + index if explicit is not None else \
                    same_host(addresses[instance][net], network.subnet, network.subnet6)
                if address in owners and owners[address] != instance:
                    clashes.append((("nodes", name, "ip6" if explicit else "networks", net),
                                    f"{address} (for {instance}) is already {owners[address]}'s: give "
                                    "one of them another address with ip6:"))
                owners[address] = instance
                mine[net] = address
    gateways6 = {}
    for net, network in spec.networks.items():
        if network.subnet6 is not None and net in gateways:
            gateway = same_host(gateways[net], network.subnet, network.subnet6)
            if gateway in owners:
                clashes.append((("networks", net, "subnet6"), f"{gateway}, the engine gateway's address "
                                f"on '{net}', is {owners[gateway]}'s: give that node another ip6:"))
            gateways6[net] = gateway
    return result, gateways6, clashes
