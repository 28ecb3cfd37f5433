"""Which DNS names point at a node: the names its TLS certificate must cover.

A name points at a node when its A record names the node (or one of its
addresses), or when its CNAME leads, through any chain, to such a name.
"""

from __future__ import annotations

from lab.topology.lab import Lab
from lab.topology.names import absolute


def _values(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def names_pointing_at(lab: Lab, node: str) -> list[str]:
    """Absolute names (trailing dot) whose A or CNAME records lead to node, sorted."""
    targets = {node} | {str(a) for i in lab.instances_of(node) for a in i.addresses.values()}
    found: set[str] = set()
    aliases: dict[str, str] = {}   # name -> its CNAME target, both absolute
    for zone_name, zone in lab.spec.zones.items():
        for record, by_type in zone.records.items():
            fqdn = absolute(record, zone_name)
            if any(v in targets for v in _values(by_type.get("A", []))):
                found.add(fqdn)
            for target in _values(by_type.get("CNAME", [])):
                aliases[fqdn] = absolute(target, zone_name)
    # Follow CNAME chains until nothing new: lab zones are small, this ends quickly.
    while True:
        more = {alias for alias, target in aliases.items() if target in found and alias not in found}
        if not more:
            break
        found |= more
    return sorted(found)


def addresses_of(lab: Lab, node: str) -> list[str]:
    """Every address of every instance of node, in order, without repeats."""
    seen: list[str] = []
    for instance in lab.instances_of(node):
        for address in instance.addresses.values():
            if str(address) not in seen:
                seen.append(str(address))
    return seen
