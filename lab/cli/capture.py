"""`lab capture`: a node's packets, as pcap for Wireshark or as lines for a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lab.backends import open_backend
from lab.backends.protocol import CaptureRequest
from lab.cli.common import LAB_OPTION, choose_lab, err
from lab.errors import UsageError
from lab.interrupts import stop_on_signals


@click.command(name="capture")
@LAB_OPTION
@click.argument("node")
@click.argument("network", required=False)
@click.option("--filter", "bpf", default="", metavar="EXPR", help="A tcpdump filter, e.g. 'port 53'.")
@click.option("-w", "--write", "output", metavar="FILE", help="Write pcap to FILE ('-': stdout, for wireshark -k -i -).")
@click.option("--duration", type=click.FloatRange(min=0.1), metavar="S", help="Stop after S seconds.")
@click.option("-c", "--count", type=click.IntRange(min=1), metavar="N", help="Stop after N packets.")
def capture_command(lab_name: str | None, node: str, network: str | None, bpf: str, output: str | None,
                    duration: float | None, count: int | None) -> None:
    """Capture NODE's packets (on NETWORK only, if given) from outside the node.

    Without -w, one line a packet (tcpdump -n). Ctrl-C, --duration or --count ends it.
    Examples: lab capture resolver --filter 'port 53' -w dns.pcap;
    lab capture fw backbone -w - | wireshark -k -i -
    """
    backend = open_backend()
    request = CaptureRequest(choose_lab(backend, lab_name), node, network, bpf, duration, count, text=output is None)
    # SIGTERM and SIGHUP end a capture as Ctrl-C does: cleanly, the helper removed.
    with stop_on_signals():
        if output is None or output == "-":
            result = backend.capture(request, sys.stdout.buffer)
        else:
            path = Path(output)
            if path.parent and not path.parent.exists():
                raise UsageError(f"cannot write {output}: the folder {path.parent} does not exist")
            with path.open("wb") as sink:
                result = backend.capture(request, sink)
    where = f"{node}:{network}" if network else f"{node} (every interface)"
    written = "" if output is None else f", {result.bytes_written} bytes of pcap to {output}"
    err.print(f"captured on {where} ({result.interface}) for {result.seconds:.1f} s{written}", highlight=False)


COMMANDS = [capture_command]
