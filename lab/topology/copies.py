"""Copies of one lab for a classroom: the same topology N times on one engine.

Copy k (1, 2, ...) is the topology with the name `NAME-k` and every address of
the lab's own subnets moved by k strides, so copies run side by side with each
other and with the original. A stride is per address range: the smallest power
of two (at least a /24) that holds all of the lab's subnets in that range, so a
copy's subnets keep their prefix alignment and never overlap another copy's.

IPv6 prefixes (all /64s) move the same way: by k times the smallest power of two of /64s
that holds all of the lab's prefixes, so copies' prefixes never meet.

The copy is made on the YAML text, not on the model, so that every address the
author wrote (node addresses, DNS records, firewall rules, checks) moves the same
way, and the copy is then validated like any topology. Pure: no engine here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address, ip_network

from lab.errors import UsageError
from lab.topology.lab import Lab
from lab.topology.names import NODE_NAME

# The ranges a lab may take copies from; a lab's subnets must lie in them.
COPY_RANGES = tuple(ip_network(r) for r in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.18.0.0/15"))
MIN_STRIDE = 256
NAME_LENGTH = 32   # the longest lab name (lab.topology.names.NODE_NAME)

# An IPv4 literal, maybe with a prefix length, not part of a longer dotted number.
_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\d.])")
# An IPv6 literal (two colons at least, so no time of day), maybe with a prefix length.
_ADDRESS6 = re.compile(r"(?<![\w:.])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(/\d{1,3})?(?![\w:.])")
_NAME_LINE = re.compile(r"^name:[ \t]*(\S+)[ \t]*(#.*)?$", re.MULTILINE)


class CopyError(UsageError):
    """The lab cannot be copied as asked (a usage problem: exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Stride:
    range: IPv4Network     # the private or reserved range the copies must stay in
    block: IPv4Network     # the /16 (or smaller range) whose subnets move together
    step: int              # addresses between one copy's subnets and the next copy's
    room: int              # how many copies fit in the range after the original


def _block(subnet: IPv4Network, home: IPv4Network) -> IPv4Network:
    return subnet.supernet(new_prefix=max(home.prefixlen, min(16, subnet.prefixlen)))


def strides(lab: Lab) -> list[Stride]:
    """One stride per group of the lab's subnets (those in one /16 of one range); CopyError if a
    subnet is in none of the ranges. Groups far apart move by their own small strides."""
    grouped: dict[tuple[IPv4Network, IPv4Network], list[IPv4Network]] = {}
    for name, network in lab.spec.networks.items():
        subnet = ip_network(network.subnet)
        home = next((r for r in COPY_RANGES if subnet.subnet_of(r)), None)
        if home is None:
            ranges = ", ".join(str(r) for r in COPY_RANGES)
            raise CopyError(f"network {name!r} ({subnet}) is outside the ranges copies are made in "
                            f"({ranges}): move it into one of them to make copies of this lab")
        grouped.setdefault((home, _block(subnet, home)), []).append(subnet)
    result = []
    for (home, block), subnets in grouped.items():
        low = min(int(s.network_address) for s in subnets)
        high = max(int(s.broadcast_address) for s in subnets)
        step = max(MIN_STRIDE, 1 << (high - low).bit_length())
        result.append(Stride(home, block, step, (int(home.broadcast_address) - high) // step))
    return result


def _stride_of(found: list[Stride], subnet: IPv4Network) -> Stride:
    return next(s for s in found if subnet.subnet_of(s.block))


def _overlap(lab: Lab, found: list[Stride], count: int) -> str | None:
    """Two groups' copies may meet further up a range: find the first such pair, if any."""
    placed: list[tuple[IPv4Network, str]] = []
    for index in range(count + 1):
        for name, network in lab.spec.networks.items():
            subnet = ip_network(network.subnet)
            moved = ip_network(f"{IPv4Address(int(subnet.network_address) + _stride_of(found, subnet).step * index)}"
                               f"/{subnet.prefixlen}")
            where = f"{name!r} of copy {index}" if index else f"{name!r}"
            clash = next((other for net, other in placed if net.overlaps(moved)), None)
            if clash:
                return f"network {where} ({moved}) would overlap network {clash}"
            placed.append((moved, where))
    return None


def most_copies(lab: Lab) -> int:
    return min(s.room for s in strides(lab))


def copy_name(lab_name: str, index: int) -> str:
    return f"{lab_name}-{index}"


def _check_request(lab: Lab, count: int) -> list[Stride]:
    if count < 1:
        raise CopyError(f"--copies needs a number of copies of 1 or more, not {count}")
    longest = copy_name(lab.name, count)
    if len(longest) > NAME_LENGTH or not NODE_NAME.match(longest):
        raise CopyError(f"the copies' names ({longest}, ...) would be longer than {NAME_LENGTH} "
                        f"characters: shorten the lab's name {lab.name!r}")
    found = strides(lab)
    for stride in found:
        if stride.room < count:
            raise CopyError(f"{count} copies of lab {lab.name!r} do not fit in {stride.range}: at most "
                            f"{stride.room} do (each takes {stride.step} addresses there); ask for fewer "
                            "copies or use smaller subnets")
    clash = _overlap(lab, found, count)
    if clash:
        raise CopyError(f"{count} copies of lab {lab.name!r} do not fit: {clash}; ask for fewer copies "
                        "or move the lab's groups of subnets further apart")
    return found


def _mover(lab: Lab, found: list[Stride], index: int):
    subnets = [ip_network(n.subnet) for n in lab.spec.networks.values()]

    def move(match: re.Match) -> str:
        address, prefix = match.group(1), match.group(2) or ""
        try:
            literal = ip_network(address + prefix, strict=False) if prefix else IPv4Address(address)
        except ValueError:
            return match.group(0)
        inside = any((literal.subnet_of(s) if prefix else literal in s) for s in subnets)
        if not inside:   # not one of the lab's own addresses (0.0.0.0/0, a comment's range)
            return match.group(0)
        first = IPv4Address(address)
        stride = next(s for s in found if first in s.block)
        return f"{IPv4Address(int(first) + stride.step * index)}{prefix}"

    return move


def _stride6(lab: Lab) -> int:
    """Addresses between one copy's IPv6 prefixes and the next's (0: the lab has none)."""
    prefixes = [int(n.subnet6.network_address) >> 64 for n in lab.spec.networks.values() if n.subnet6]
    if not prefixes:
        return 0
    return (1 << (max(prefixes) - min(prefixes)).bit_length()) << 64


def _mover6(lab: Lab, index: int):
    prefixes = [n.subnet6 for n in lab.spec.networks.values() if n.subnet6]
    step = _stride6(lab) * index

    def move(match: re.Match) -> str:
        address, prefix = match.group(1), match.group(2) or ""
        try:
            first = ip_address(address)
        except ValueError:
            return match.group(0)
        if not isinstance(first, IPv6Address) or not any(first in p for p in prefixes):
            return match.group(0)
        return f"{IPv6Address(int(first) + step)}{prefix}"

    return move


def copy_texts(text: str, lab: Lab, count: int) -> dict[str, str]:
    """Copy name -> topology text, for copies 1..count."""
    found = _check_request(lab, count)
    return {copy_name(lab.name, i): _copy(text, lab, i, found) for i in range(1, count + 1)}


def _copy(text: str, lab: Lab, index: int, found: list[Stride]) -> str:
    if not _NAME_LINE.search(text):
        raise CopyError("the topology has no top-level 'name:' line to give each copy its own name")
    renamed = _NAME_LINE.sub(lambda m: f"name: {copy_name(lab.name, index)}", text, count=1)
    moved = _ADDRESS.sub(_mover(lab, found, index), renamed)
    return _ADDRESS6.sub(_mover6(lab, index), moved) if _stride6(lab) else moved
