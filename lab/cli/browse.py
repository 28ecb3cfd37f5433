"""`lab browse URL`: a real page load in headless Chromium from a client node, with the lab's record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, OutputFile, err, out, running_topology
from lab.interrupts import stop_on_signals


class _BuildNotice:
    """Says once, on stderr, that the browser image is being built (a minute, the first time)."""

    def __init__(self) -> None:
        self.told = False

    def __call__(self, image: str, line: str) -> None:
        if not self.told:
            self.told = True
            err.print("building the browser image (Chromium; about a minute, once) ...", highlight=False)


@click.command()
@click.argument("url")
@click.option("--from", "source", metavar="NODE", help="Client node whose network the browser uses (default: the first).")
@click.option("--reload", is_flag=True,
              help="Load it again after closing and reopening the browser on the same profile "
                   "(its cache kept): shows the browser's cache and the OS's DNS cache.")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lab's topology file (default: the running lab's own).")
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the loads as JSON (schema lab.browse/1).")
@click.option("--html", "html", type=OutputFile(),
              help="Also write a self-contained HTML report: waterfall, the lab's evidence, screenshot.")
@click.option("--screenshot", "screenshot", type=OutputFile(), help="Also write the page as rendered (PNG).")
@click.option("--no-journey", "no_journey", is_flag=True,
              help="Leave the caches and the path alone: no flush of the resolver's and the node's DNS "
                   "caches, no capture on the routers and firewall (the journey's steps then say so).")
def browse(url: str, source: str | None, reload: bool, file: Path | None, lab_name: str | None, as_json: bool,
           html: Path | None, screenshot: Path | None, no_journey: bool) -> None:
    """Load URL in headless Chromium inside a client node (its network, its DNS cache, the lab CA
    trusted), then show each request with what the lab's logs recorded about it, and each load's
    journey in 13 steps (browser cache to database), each observed from this load's records. For
    that the resolver's and the node's DNS caches are emptied first (the first load is cold all
    the way) and the routers, the firewall and the resolver record while the page loads.

    Exit status: 0 every load's page arrived (a failed file or API call is listed, not
    fatal), 1 a page did not (or the browser could not run), 2 a bad URL or node."""
    from lab.browse.render import render
    from lab.browse.run import browse as load_page
    from lab.trace.journey import parse_target

    parse_target(url)   # a bad URL is a usage error before anything runs
    backend = open_backend()
    lab = running_topology(backend, lab_name, file, instead="give it with --file")
    with stop_on_signals():   # Ctrl-C, SIGTERM, SIGHUP: the helper is removed on the way out
        result = load_page(backend, lab, url, source, reload, screenshot=bool(html or screenshot),
                           progress=_BuildNotice(), journey=not no_journey)
    if screenshot is not None and result.screenshot:
        screenshot.write_bytes(result.screenshot)
    if html is not None:
        from lab.browse.report import to_html

        html.write_text(to_html(result), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for line in render(result, out.width):
            out.print(line, soft_wrap=False)
        for written in (w for w in (html, screenshot) if w is not None):
            out.print(f"wrote {written}", highlight=False)
    if not result.ok:
        sys.exit(1)


COMMANDS = [browse]
