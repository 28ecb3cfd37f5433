"""`lab trace URL`: the journey of one request through the lab, from real evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, err, out, running_topology
from lab.errors import UsageError
from lab.interrupts import stop_on_signals
from lab.layout import wrapped


@click.command()
@click.argument("url")
@click.option("--from", "source", metavar="NODE", help="Client node to run the request from (default: the first).")
@click.option("-X", "--method", metavar="METHOD", help="HTTP method (default GET, or POST with -d).")
@click.option("-d", "--data", metavar="DATA", help="Request body to send (as curl --data-raw).")
@click.option("-H", "--header", "headers", metavar="'NAME: VALUE'", multiple=True, help="Extra request header.")
@click.option("-4", "family", flag_value=4, help="Connect over IPv4 only (curl -4).")
@click.option("-6", "family", flag_value=6, help="Connect over IPv6 only (curl -6).")
@click.option("-L", "--follow", is_flag=True, help="Follow a redirect: trace the request it leads to as well.")
@click.option("--max-time", type=click.FloatRange(0.5, 120), default=20.0, show_default=True,
              help="Give the whole request this many seconds.")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lab's topology file (default: the running lab's own).")
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON (schema lab.trace/2).")
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page with a sequence diagram and the waterfall.")
@click.option("--pcap", "pcap", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.pcapng",
              help="Also write the request's packets at every hop to FILE (pcapng, one interface a node:network).")
def trace(url: str, source: str | None, method: str | None, data: str | None, headers: tuple[str, ...],
          family: int | None, follow: bool, max_time: float, file: Path | None, lab_name: str | None,
          as_json: bool, html: Path | None, pcap: Path | None) -> None:
    """Run URL from a client node and show each step with the container that did it and its time."""
    from lab.trace.journey import parse_target, trace_url
    from lab.trace.render import waterfall
    from lab.trace.web import RequestOptions

    parse_target(url)   # a bad URL is a usage error before anything runs
    bad = [h for h in headers if ":" not in h]
    if bad:
        raise UsageError(f"header '{bad[0]}' has no ':' (give -H 'Name: value')")
    if pcap is not None and not pcap.parent.is_dir():
        raise UsageError(f"cannot write {pcap}: the folder {pcap.parent} does not exist")
    backend = open_backend()
    lab = running_topology(backend, lab_name, file, instead="give it with --file")
    options = RequestOptions(method=method.upper() if method else None, data=data, headers=list(headers),
                             max_time=max_time, family=family)
    # SIGTERM and SIGHUP end a trace as Ctrl-C does: its capture helpers are removed
    try:
        with stop_on_signals():
            result = trace_url(backend, lab, url, source, options, follow, pcap)
    except KeyboardInterrupt as error:
        said = error.args[0] if error.args else "SIGINT"
        err.print(f"lab trace: interrupted by {said}", highlight=False)
        sys.exit(getattr(error, "exit_code", 130))
    chain = [result]
    while chain[-1].redirected_to is not None:
        chain.append(chain[-1].redirected_to)
    if html is not None:
        from lab.trace.html import to_html

        html.write_text(to_html(chain[-1] if len(chain) > 1 else result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        width = out.width
        for number, one in enumerate(chain):
            if number:
                out.print(f"\nfollowing the redirect to {one.url}", highlight=False)
            out.print(waterfall(one, width), soft_wrap=False)
        if html is not None:
            out.print(f"wrote {html}", highlight=False)
        if result.pcap:
            said = (f"wrote {pcap}: {result.pcap['packets']} packets of this request at "
                    f"{len(result.pcap['points'])} capture points: {', '.join(result.pcap['points'])}")
            for line in wrapped(said, width):
                out.print(line, soft_wrap=False)
    if not chain[-1].ok:
        sys.exit(1)


COMMANDS = [trace]
