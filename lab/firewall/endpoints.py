"""The two ends of a flow `lab firewall explain` is asked about, and its address families.

An end is a node (or replica) name, or an address one of the lab's nodes holds. An
address says the family; a name leaves it open: then both families are explained when
both ends have an address of each (`-4`/`-6` pick one). Pure: reads the topology only.
Every refusal is bad input (UsageError, exit 2) that names what the lab has instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from lab.errors import UsageError
from lab.firewall.path import address_owner, addresses_in
from lab.topology.lab import Instance, Lab


@dataclass(frozen=True)
class End:
    instance: Instance
    address: IPv4Address | IPv6Address | None = None   # given as an address: this one

    @property
    def name(self) -> str:
        return self.instance.name


def _instance(lab: Lab, name: str) -> Instance:
    try:
        return lab.instance(name)
    except KeyError:
        if name in lab.spec.nodes:
            return lab.instances_of(name)[0]
        raise UsageError(f"lab '{lab.name}' has no node '{name}' "
                         f"(nodes: {', '.join(lab.instance_names())})") from None


def _prefixes(lab: Lab, family: int) -> list[str]:
    return [str(n.subnet6 if family == 6 else n.subnet) for n in lab.spec.networks.values()
            if (n.subnet6 if family == 6 else n.subnet) is not None]


def resolve_end(lab: Lab, text: str) -> End:
    """A node name, or an address of a lab node (either family)."""
    try:
        address = ip_address(text)
    except ValueError:
        return End(_instance(lab, text))
    found = address_owner(lab, address)
    if found is None:
        prefixes = _prefixes(lab, address.version)
        where = (f"its IPv{address.version} networks are {', '.join(prefixes)}" if prefixes
                 else f"it has no IPv{address.version} network")
        raise UsageError(f"{text} is no address of a node of lab '{lab.name}' ({where}); "
                         "`lab status` lists each node's addresses, or name the node")
    return End(found[0], address)


def _lacks(lab: Lab, instance: Instance, family: int) -> str:
    """Why an instance has no address of a family: its networks have no prefix of it."""
    networks = ", ".join(instance.addresses)
    fix = "add `subnet6:` to one of them" if family == 6 else "it has none"
    return (f"node '{instance.name}' has no IPv{family} address: its networks ({networks}) "
            f"carry no IPv{family} prefix ({fix})")


def families(lab: Lab, source: End, target: End, asked: int | None) -> tuple[list[int], list[str]]:
    """(the families to explain, notes on a family left out). Refuses a family an end lacks,
    two ends of different families, and a family asked for that an address contradicts."""
    given = {end.address.version for end in (source, target) if end.address is not None}
    if len(given) == 2:
        raise UsageError(f"{source.address} is IPv4 and {target.address} IPv6 (or the other way): "
                         "a flow has one family; give both ends in the same one, or name the nodes")
    if given and asked is not None and asked not in given:
        raise UsageError(f"-{asked} asks for IPv{asked}, but the address given is IPv{given.pop()}: "
                         f"drop -{asked} or give an IPv{asked} address")
    wanted = given.pop() if given else asked
    if wanted is not None:
        for end in (source, target):
            if not addresses_in(end.instance, wanted):
                raise UsageError(_lacks(lab, end.instance, wanted))
        return [wanted], []
    chosen, notes = [], []
    for family in (4, 6):
        missing = [end.instance for end in (source, target) if not addresses_in(end.instance, family)]
        if missing:
            notes.append(f"not over IPv{family}: " + "; ".join(_lacks(lab, i, family) for i in missing))
        else:
            chosen.append(family)
    if not chosen:
        raise UsageError(f"'{source.name}' and '{target.name}' have no address family in common")
    return chosen, notes
