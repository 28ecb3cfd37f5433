"""Commands about the web part of a lab: `lab ca`."""

from __future__ import annotations

from pathlib import Path

import click

from lab import pki
from lab.cli.common import TOPOLOGY_ARG
from lab.state import ca_cert_path, ensure_lab_state
from lab.topology import load_topology


@click.command()
@TOPOLOGY_ARG
def ca(file: Path | None) -> None:
    """Print the path of the lab's CA certificate (made if needed), for the host to trust.

    Trusting it means trusting the lab to vouch for names under its zones and addresses in
    its subnets, and for nothing else: the CA is name-constrained (what it covers goes to
    stderr, so $(lab ca) stays a path).

    Example: curl --cacert "$(lab ca)" https://www.shop.test/ (with the lab's names resolvable).
    """
    lab = load_topology(file)
    ensure_lab_state(lab)   # the CA is made at the first `lab up`; asking first makes it now
    path = ca_cert_path(lab.name)
    zones, subnets = pki.ca_constraints(path.read_text())
    if zones or subnets:
        click.echo(f"trusting this CA trusts the lab '{lab.name}' only for\n"
                   f"  names under: {', '.join(zones) or 'any'}\n"
                   f"  addresses in: {', '.join(subnets) or 'any'}", err=True)
    else:
        click.echo(f"this CA of lab '{lab.name}' has no name constraints: trusting it trusts any name",
                   err=True)
    click.echo(str(path))


COMMANDS = [ca]
