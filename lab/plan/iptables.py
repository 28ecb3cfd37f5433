"""Policy rules written out as one iptables-restore file (filter and nat tables), for IPv4
(iptables-restore) or IPv6 (ip6tables-restore): one policy, two families. A rule about
addresses is written in a family only with its addresses of that family (a rule about a
node only IPv4 reaches has no IPv6 line: it must not become "any"); a rule about no
address (any) is written in both.

iptables-restore replaces both tables in one transaction, so a reload is
atomic: no moment runs with half a rule set. Every line carries its rule's
name as a comment; `lab firewall show` maps counters back through it.
"""

from __future__ import annotations

from itertools import product

from lab.firewall.policy import PolicyRule

TARGETS = {"allow": "ACCEPT", "deny": "DROP", "masquerade": "MASQUERADE", "dnat": "DNAT"}
MULTIPORT_SLOTS = 15          # the multiport match takes at most 15 ports (a range counts as 2)
LOG_PREFIX_MAX = 29           # the kernel's limit on --log-prefix
# ICMPv6 has its own error for a packet too big (IPv4 says it with a destination-unreachable code)
ICMP6_ALSO = {"destination-unreachable": ("packet-too-big",)}


V6_PROTO = {"icmp": "ipv6-icmp"}


def _target(rule: PolicyRule, family: int) -> list[str]:
    if rule.action == "reject":
        reply = "tcp-reset" if rule.proto == "tcp" else \
            ("icmp-port-unreachable" if family == 4 else "icmp6-port-unreachable")
        return ["-j", "REJECT", "--reject-with", reply]
    if rule.action == "dnat":
        return ["-j", "DNAT", "--to-destination", rule.to_destination or ""]
    return ["-j", TARGETS[rule.action]]


def _port_groups(rule: PolicyRule) -> list[list[str]]:
    if not rule.ports:
        return [[]]
    if len(rule.ports) == 1:
        lo, hi = rule.ports[0]
        return [["-m", rule.proto, "--dport", str(lo) if lo == hi else f"{lo}:{hi}"]]
    groups, current, used = [], [], 0
    for lo, hi in rule.ports:
        cost = 1 if lo == hi else 2
        if used + cost > MULTIPORT_SLOTS:
            groups.append(current)
            current, used = [], 0
        current.append(str(lo) if lo == hi else f"{lo}:{hi}")
        used += cost
    groups.append(current)
    return [["-m", "multiport", "--dports", ",".join(group)] for group in groups]


def _addresses(flag: str, networks, family: int) -> list[list[str]]:
    """Match words for each network of the family; [[]] (no match: any) when networks is None,
    [] (the rule has no line in this family) when none is of the family."""
    if networks is None:
        return [[]]
    return [[flag, str(net)] for net in networks if net.version == family]


def _icmp(family: int, kind: str) -> list[str]:
    return ["-m", "icmp", "--icmp-type", kind] if family == 4 else ["-m", "icmp6", "--icmpv6-type", kind]


def _matches(rule: PolicyRule, family: int = 4) -> list[list[str]]:
    """One match list per iptables line: sources x destinations x port groups."""
    sources = _addresses("-s", rule.sources, family)
    destinations = _addresses("-d", rule.destinations, family)
    if rule.not_destination is not None:
        destinations = [["!", "-d", str(rule.not_destination)]] if rule.not_destination.version == family else []
    common = []
    if rule.in_interface:
        common += ["-i", rule.in_interface]
    if rule.proto:
        common += ["-p", V6_PROTO.get(rule.proto, rule.proto) if family == 6 else rule.proto]
    if rule.states:
        common += ["-m", "conntrack", "--ctstate", ",".join(rule.states)]
    lines = []
    for src, dst, ports in product(sources, destinations, _port_groups(rule)):
        if rule.icmp_types:
            kinds = [k for kind in rule.icmp_types for k in (kind, *(ICMP6_ALSO.get(kind, ()) if family == 6 else ()))]
            lines += [[*src, *dst, *common, *_icmp(family, kind)] for kind in kinds]
        else:
            lines.append([*src, *dst, *common, *ports])
    return lines


def _log_prefix(rule: PolicyRule) -> str:
    return f"lab {rule.name} {rule.action}"[:LOG_PREFIX_MAX - 2] + ": "


def _quote(word: str) -> str:
    return f'"{word}"' if (" " in word or not word) else word


def rule_lines(rule: PolicyRule, logging: bool, family: int = 4) -> list[str]:
    lines = []
    comment = ["-m", "comment", "--comment", rule.name]
    for match in _matches(rule, family):
        head = ["-A", rule.chain, *match, *comment]
        if rule.log and logging:
            lines.append(" ".join(_quote(w) for w in [*head, "-j", "LOG", "--log-prefix", _log_prefix(rule)]))
        lines.append(" ".join(_quote(w) for w in [*head, *_target(rule, family)]))
    return lines


def render_rules(policy: list[PolicyRule], filtering: bool, logging: bool, family: int = 4) -> str:
    """The whole iptables-restore file (ip6tables-restore for family 6). `filtering`: FORWARD
    and INPUT drop by default (a firewall); otherwise both accept (a router that only
    translates addresses). With `logging`, rules asking for it get a LOG line before their
    action."""
    drop_or_accept = "DROP" if filtering else "ACCEPT"
    out = ["# Generated by lab from the topology: do not edit, edit the topology and run `lab up`.",
           "*filter", f":INPUT {drop_or_accept} [0:0]", f":FORWARD {drop_or_accept} [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [line for rule in policy if rule.table == "filter" for line in rule_lines(rule, logging, family)]
    out += ["COMMIT", "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"]
    out += [line for rule in policy if rule.table == "nat" for line in rule_lines(rule, logging, family)]
    out.append("COMMIT")
    return "\n".join(out) + "\n"
