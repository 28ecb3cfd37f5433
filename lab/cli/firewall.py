"""`lab firewall show NODE` and `lab firewall explain FROM TO [PORT]`."""

from __future__ import annotations

import json

import click

from lab.kinds import registry
from lab.kinds.registry import PACKET_FILTER
from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, out, running_topology
from lab.errors import RuntimeFailure, UsageError
from lab.firewall import live as runtime_firewall
from lab.firewall.endpoints import families, resolve_end
from lab.firewall.policy import PolicyRule, node_policy, ports_text
from lab.layout import Record, table_or_stacked, wrapped
from lab.plan.seal import seal_policy
from lab.topology import Lab
from lab.topology.model import FORWARDING_KINDS


def _node_of(lab: Lab, name: str) -> str:
    try:
        return lab.instance(name).node
    except KeyError:
        if name in lab.spec.nodes:
            return name
        raise UsageError(f"lab '{lab.name}' has no node '{name}' (nodes: {', '.join(lab.instance_names())})") from None


def _instance_name(lab: Lab, name: str) -> str:
    node = _node_of(lab, name)
    return name if name != node else lab.instances_of(node)[0].name


def _who(rule: PolicyRule, which: str) -> str:
    if rule.intent is not None:
        return rule.intent.from_ if which == "from" else rule.intent.to
    nets = rule.sources if which == "from" else rule.destinations
    if which == "to" and rule.not_destination is not None:
        return f"not {rule.not_destination}"
    return "any" if nets is None else ",".join(str(n) for n in nets)


def _rule_row(rule: PolicyRule, counters, by_family: dict) -> dict:
    packets, size = counters.get((rule.chain, rule.name), (None, None))
    families = {f"ipv{family}": list(found[(rule.chain, rule.name)])
                for family, found in by_family.items() if (rule.chain, rule.name) in found}
    return {"families": families,"chain": rule.chain, "name": rule.name, "from": _who(rule, "from"), "to": _who(rule, "to"),
            "proto": rule.proto or "all", "ports": ports_text(rule.ports) if rule.proto in ("tcp", "udp") else "",
            "action": rule.action + (" +log" if rule.log else ""), "builtin": rule.builtin,
            "packets": packets, "bytes": size}


@click.group()
def firewall() -> None:
    """Firewall and router rules: what they are, and which one decides a flow."""


@firewall.command()
@click.argument("node")
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
def show(node: str, lab_name: str | None, as_json: bool) -> None:
    """The rules of a router or firewall, in order, with packet and byte counters."""
    backend = open_backend()
    lab = running_topology(backend, lab_name)
    name = _instance_name(lab, node)
    if lab.instance(name).kind not in FORWARDING_KINDS:
        raise UsageError(f"'{node}' is a {lab.instance(name).kind}: only routers and firewalls have rules")
    by_family = runtime_firewall.read_counters_by_family(backend, lab.name, name)
    counters = runtime_firewall.sum_counters(by_family.values())   # a rule counts in both families
    kind = lab.instance(name).kind
    dual = bool(lab.instance(name).addresses6)
    rules = node_policy(lab, lab.instance(name).node) + seal_policy(
        [*lab.gateways.values(), *lab.gateways6.values()], not registry.is_a(kind, PACKET_FILTER), dual)
    rows = [_rule_row(rule, counters, by_family) for rule in rules]
    stale = sorted({n for (_c, n) in counters} - {r["name"] for r in rows})
    logging = runtime_firewall.logging_status(backend, lab.name, name)
    if as_json:
        click.echo(json.dumps({"node": name, "rules": rows, "logging": logging, "not_in_topology": stale}, indent=2))
        return
    for line in _rules_lines(name, rows, out.width):
        out.print(line, soft_wrap=False)
    for line in wrapped(f"logging: {logging}", out.width, 0, 4):
        out.print(line, soft_wrap=False)
    if dual:
        for line in wrapped("counters: IPv4 and IPv6 together (iptables and ip6tables hold the same "
                            "rules; --json gives each family's)", out.width, 0, 4):
            out.print(line, soft_wrap=False)
    if stale or any(row["packets"] is None for row in rows):
        for line in wrapped("the node's rules differ from the topology file: run `lab up` to apply it",
                            out.width, style="yellow"):
            out.print(line, soft_wrap=False)


RULE_COLUMNS = ["#", "chain", "name", "from", "to", "proto", "ports", "action", "packets", "bytes"]


def _count(value) -> str:
    return "-" if value is None else str(value)


def _spaced(addresses: str) -> str:
    # "a/32,b/32,..." as "a/32, b/32, ...": a long list then wraps between addresses, never inside one
    return addresses.replace(",", ", ")


def _rules_lines(node: str, rows: list[dict], width: int) -> list:
    """The rules as a table when it fits the width, else one block per rule (nothing cut)."""
    cells = [[str(index), row["chain"], row["name"], row["from"], row["to"], row["proto"], row["ports"],
              row["action"], _count(row["packets"]), _count(row["bytes"])] for index, row in enumerate(rows, 1)]
    records = [Record(f"{index:>2}. {row['name']}: {row['action']}",
                      [("chain", row["chain"]), ("from", _spaced(row["from"])), ("to", _spaced(row["to"])),
                       ("proto", row["proto"])] + ([("ports", row["ports"])] if row["ports"] else []) +
                      [("packets", _count(row["packets"])), ("bytes", _count(row["bytes"]))],
                      style="dim" if row["builtin"] else "")
               for index, row in enumerate(rows, 1)]
    styles = ["dim" if row["builtin"] else "" for row in rows]
    heading = wrapped(f"{node}: rules in order (first match decides)", width, style="bold")
    return heading + table_or_stacked(RULE_COLUMNS, cells, records, width,
                                      frozenset({"#", "packets", "bytes"}), styles)


def _explanation_lines(explanation, width: int) -> list:
    """The explanation as lines of at most width columns; each continues indented under itself."""
    def say(text: str, indent: int = 0, hang: int = 4, style: str = "") -> list:
        return wrapped(text, width, indent, indent + hang, style)

    family = explanation.family
    address = f"[{explanation.address}]" if family == 6 and explanation.port is not None else explanation.address
    port = "" if explanation.port is None else f":{explanation.port}"
    lines = say(f"{explanation.source} -> {explanation.target} over IPv{family} "
                f"({address}{port}/{explanation.proto})", style="bold")
    lines += say(f"path: {' -> '.join(explanation.path)}", 2)
    for note in explanation.notes:
        lines += say(f"nat: {note}", 2)
    if not explanation.verdicts:
        lines += say("no firewall on the path: routers forward everything", 2)
    for verdict in explanation.verdicts:
        flow = verdict.flow
        mark, style = {True: ("confirmed", "green"), False: ("NOT confirmed", "red"),
                       None: ("not probed", "")}[verdict.confirmed]
        lines += say(f"{verdict.firewall} ({TABLES[family]} {verdict.chain}, sees {flow.source} -> {flow.destination}): "
                     f"rule '{verdict.rule.name}' -> {verdict.action}, {mark}", 2, style=style)
        if verdict.rose:
            rose = ", ".join(f"{name} +{count}" for name, count in sorted(verdict.rose.items()))
            lines += say(f"counters that rose: {rose}", 6)
        if verdict.mismatch:
            lines += say(verdict.mismatch, 6, style="red")
    if explanation.probe is not None:
        lines += say(f"probe: {explanation.probe.result} in {explanation.probe.seconds:.2f} s "
                     f"(expected for '{explanation.expected}')", 2)
    for problem in explanation.problems:
        lines += say(f"mismatch: {problem}", 2, style="red")
    return lines


TABLES = {4: "iptables", 6: "ip6tables"}


@firewall.command()
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@click.argument("port", required=False, type=click.IntRange(1, 65535))
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="tcp", show_default=True)
@click.option("-4", "family", flag_value=4, help="Over IPv4 only.")
@click.option("-6", "family", flag_value=6, help="Over IPv6 only.")
@click.option("--family", "family_option", type=click.Choice(["4", "6"]), help="The same as -4 / -6.")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds the probe waits.")
@click.option("--no-probe", is_flag=True, help="Only compute; send nothing.")
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(source: str, target: str, port: int | None, proto: str, family: int | None, family_option: str | None,
            timeout: float, no_probe: bool, lab_name: str | None, as_json: bool) -> None:
    """Which rule of each firewall between FROM and TO decides a flow, confirmed by a probe.

    FROM and TO are node names or addresses of lab nodes (IPv4 or IPv6). Two names
    are explained over both families when both nodes have both; -4 / -6 pick one.

    Exit status 1 when a probe contradicts the computed rule."""
    if proto != "icmp" and port is None:
        raise click.UsageError(f"a {proto} flow needs a PORT")
    if family is not None and family_option is not None and int(family_option) != family:
        raise click.UsageError(f"-{family} and --family {family_option} disagree: give one")
    asked = family if family is not None else (int(family_option) if family_option else None)
    backend = open_backend()
    lab = running_topology(backend, lab_name)
    start, end = resolve_end(lab, source), resolve_end(lab, target)
    chosen, left_out = families(lab, start, end, asked)
    explanations = [runtime_firewall.explain(backend, lab, start.name, end.name, proto,
                                             None if proto == "icmp" else port, timeout, not no_probe,
                                             family=each, destination=end.address)
                    for each in chosen]
    problems = [p for e in explanations for p in e.problems]
    if as_json:
        click.echo(json.dumps({"from": start.name, "to": end.name, "proto": proto, "port": port,
                               "families": [e.as_dict() for e in explanations], "not_explained": left_out,
                               "confirmed": not problems}, indent=2))
    else:
        for index, explanation in enumerate(explanations):
            if index:
                out.print("", soft_wrap=False)
            for line in _explanation_lines(explanation, out.width):
                out.print(line, soft_wrap=False)
        for note in left_out:
            for line in wrapped(note, out.width, 0, 4, "dim"):
                out.print(line, soft_wrap=False)
    if problems:
        raise RuntimeFailure(f"{len(problems)} mismatch(es) between the rules and what happened")


COMMANDS = [firewall]
