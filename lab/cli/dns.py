"""Commands about the DNS part of a lab: `lab dig` and `lab dns flush`."""

from __future__ import annotations

import json

import click
from rich.table import Table
from rich.tree import Tree

from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, choose_lab, out, running_topology
from lab.errors import UsageError
from lab.trace import resolver as dns_evidence
from lab.trace.dig import DigAnswer
from lab.trace.dns import DnsTrace, trace_lookup

TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "PTR", "SOA", "ANY")


def _show_answer(answer: DigAnswer, node: str) -> None:
    table = Table(title=f"{answer.name} {answer.type} from {node} via {answer.server or '?'}: "
                        f"{answer.status or answer.error} ({answer.query_ms} ms)")
    for column in ("section", "name", "ttl", "type", "data"):
        table.add_column(column)
    for section in ("answer", "authority", "additional"):
        for record in getattr(answer, section):
            table.add_row(section, record.name, str(record.ttl), record.type, record.data)
    out.print(table)


def _show_trace(trace: DnsTrace) -> None:
    """The resolver's work as a tree, wrapped at word boundaries (readable at 80 columns)."""
    source = "the resolver's cache (no server asked)" if trace.from_cache else \
        f"{len(trace.steps)} queries by the resolver"
    if trace.from_os_cache:
        source = f"{trace.client}'s own DNS cache (dnsmasq; no query reached {trace.resolver})"
    at_resolver = f"{trace.resolver_ms} ms at the resolver" if trace.resolver_ms is not None else \
        ("the resolver was not asked" if trace.from_os_cache else "no reply")
    tree = Tree(f"[bold]{trace.name} {trace.type}[/] from {trace.client} via {trace.resolver} "
                f"({trace.resolver_address})\n{trace.status}, {at_resolver}; answered from {source}")
    if trace.stub is not None:
        tree.add(f"{trace.client}'s DNS cache: " + ("; ".join(trace.stub["lines"]) or "logged nothing"))
    for step in trace.steps:
        when = f"{step.duration_ms} ms" if step.duration_ms is not None else "no reply"
        branch = tree.add(f"asked [bold]{step.server}[/] ({step.address}): {step.query}? "
                          f"[bold]{step.outcome}[/]{' (authoritative)' if step.authoritative else ''}, {when}")
        if step.outcome == "referral":
            branch.add(f"delegates {step.zone} to NS {', '.join(step.ns)}")
            for glue in step.glue:
                branch.add(f"glue {glue}")
        for record in step.answer:
            branch.add(record)
    for record in trace.answer:
        tree.add(f"[green]answer[/] {record}")
    out.print(tree, soft_wrap=False)


def _default_client(backend, lab: str) -> str:
    """The node that asks when --from is not given: the running lab's default client."""
    client = running_topology(backend, lab, instead="name the node that asks with --from NODE").default_client()
    if client is None:
        raise UsageError(f"lab '{lab}' has no client node: name the node that asks with --from NODE")
    return client


@click.command("dig")
@click.argument("name")
@click.argument("rtype", metavar="[TYPE]", default="A", type=click.Choice(TYPES, case_sensitive=False))
@click.option("--from", "node", metavar="NODE", help="node that asks (default: the first client)")
@click.option("--trace", is_flag=True, help="show each query the resolver made, or that the cache answered")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@LAB_OPTION
def dig_command(name: str, rtype: str, node: str | None, trace: bool, as_json: bool,
                lab_name: str | None) -> None:
    """Look NAME up through a node's own resolver, as its programs do."""
    backend = open_backend()
    lab = choose_lab(backend, lab_name)
    node = node or _default_client(backend, lab)
    rtype = rtype.upper()
    if trace:
        result = trace_lookup(backend, lab, node, name, rtype)
        out.print_json(json.dumps(result.as_dict())) if as_json else _show_trace(result)
    else:
        answer = dns_evidence.dig(backend, lab, node, name, rtype)
        out.print_json(json.dumps(answer.as_dict())) if as_json else _show_answer(answer, node)


@click.group("dns")
def dns_group() -> None:
    """The lab's DNS servers and resolvers."""


@dns_group.command("flush")
@click.argument("node", required=False)
@LAB_OPTION
def flush_command(node: str | None, lab_name: str | None) -> None:
    """Empty a resolver's cache, or a client's own DNS cache (default: every resolver of the lab)."""
    backend = open_backend()
    lab = choose_lab(backend, lab_name)
    if node and dns_evidence.flush_stub(backend, lab, node):
        out.print(f"flushed the DNS cache of {node} (dnsmasq)")
        return
    for resolver in [node] if node else dns_evidence.resolvers(backend, lab):
        dns_evidence.flush(backend, lab, resolver)
        out.print(f"flushed the cache of {resolver}")


COMMANDS = [dig_command, dns_group]
