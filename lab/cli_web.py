"""Commands about the web part of a lab: `lab ca`."""

from __future__ import annotations

from pathlib import Path

import click

from lab.cli import TOPOLOGY_ARG, main
from lab.state import ca_cert_path, ensure_lab_state
from lab.topology import load_topology


@main.command()
@TOPOLOGY_ARG
def ca(file: Path | None) -> None:
    """Print the path of the lab's CA certificate (made if needed), for the host to trust.

    Example: curl --cacert "$(lab ca)" https://www.shop.test/ (with the lab's names resolvable).
    """
    lab = load_topology(file)
    ensure_lab_state(lab)   # the CA is made at the first `lab up`; asking first makes it now
    click.echo(str(ca_cert_path(lab.name)))
