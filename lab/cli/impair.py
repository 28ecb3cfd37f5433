"""`lab impair`: make one node's link slow, lossy or narrow, live."""

from __future__ import annotations

import json

import click

from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, choose_lab, err, out
from lab.impair import Impairment


@click.command(name="impair")
@LAB_OPTION
@click.argument("node")
@click.argument("network")
@click.option("--rate", help="Bandwidth cap, e.g. 2mbit (tbf).")
@click.option("--delay", help="Added one-way delay, e.g. 50ms (netem).")
@click.option("--jitter", help="Delay variation, e.g. 10ms (netem, with --delay).")
@click.option("--loss", help="Packets dropped, e.g. 1% (netem).")
@click.option("--duplicate", help="Packets duplicated, e.g. 1% (netem).")
@click.option("--corrupt", help="Packets corrupted, e.g. 0.1% (netem).")
@click.option("--reorder", help="Packets reordered, e.g. 5% (netem, with --delay).")
@click.option("--clear", is_flag=True, help="Remove every impairment of this link.")
@click.option("--json", "as_json", is_flag=True, help="Print what the kernel now holds as JSON.")
def impair_command(lab_name: str | None, node: str, network: str, clear: bool, as_json: bool, **values) -> None:
    """Impair what NODE sends on NETWORK; without options, show what is set.

    Example: lab impair laptop home --rate 2mbit; lab impair laptop home --clear
    """
    backend = open_backend()
    wanted = Impairment(**values)
    asked = Impairment() if clear else (None if wanted.empty else wanted)
    applied = backend.impair(choose_lab(backend, lab_name), node, network, asked)
    if as_json:
        click.echo(json.dumps({"node": node, "network": network, "interface": applied.interface,
                               "qdiscs": applied.qdiscs}, indent=2))
        return
    verb = "cleared" if clear else ("set" if asked is not None else "current")
    out.print(f"{node}:{network} ({applied.interface}) {verb}:", highlight=False)
    for line in applied.qdiscs or ["(no qdisc)"]:
        out.print(f"  {line}", highlight=False)
    if asked is not None and not clear:
        err.print("shapes what this node sends on this link; `--clear` removes it", highlight=False)


COMMANDS = [impair_command]
