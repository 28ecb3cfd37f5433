"""`lab routes NODE` (a node's routing table with origins and AS paths, and its BGP sessions)
and `lab link down|up NODE NETWORK` (break a link, mend it): routing you can watch and break."""

from __future__ import annotations

import json

import click

from lab.backends import open_backend
from lab.cli.common import LAB_OPTION, choose_lab, out
from lab.layout import Record, table_or_stacked, wrapped
from lab.routing.live import Route, routing_table, sessions
from lab.routing.watch import selected_routes, watch_changes

ROUTE_COLUMNS = ["prefix", "origin", "via", "dev", "AS path", "in use"]
SESSION_COLUMNS = ["neighbour", "AS", "state", "routes in", "up for"]


def _route_cells(route: Route) -> list[str]:
    return [route.prefix, route.origin, route.via or "(connected)", route.interface or "",
            " ".join(map(str, route.as_path)) or "-", "yes" if route.selected else "no"]


@click.command(name="routes")
@LAB_OPTION
@click.argument("node")
@click.option("--json", "as_json", is_flag=True, help="Print the table and sessions as JSON.")
def routes_command(lab_name: str | None, node: str, as_json: bool) -> None:
    """Show NODE's routing table as it runs, IPv4 then IPv6: each route's origin (connected,
    static, ospf, ospfv3, bgp), next hop and, for BGP, the AS path; and the node's BGP sessions
    (one per family). Read from FRR when the node runs it, else from the kernel.

    Example: lab routes isp-a-border
    """
    backend = open_backend()
    lab = choose_lab(backend, lab_name)
    table = routing_table(backend, lab, node)
    peers = sessions(backend, lab, node) if table.source == "frr" else []
    if as_json:
        click.echo(json.dumps({**table.as_dict(), "sessions": [
            {"neighbor": s.neighbor, "name": s.name, "remote_as": s.remote_as, "state": s.state,
             "prefixes_received": s.prefixes_received, "uptime": s.uptime, "family": s.family}
            for s in peers]}, indent=2))
        return
    width = out.width
    said = f"AS{table.local_as}, read from FRR" if table.source == "frr" else "static routes, read from the kernel"
    lines = wrapped(f"{node}: routing table ({said})", width, style="bold")
    rows = [_route_cells(route) for route in table.routes]
    records = [Record(f"{cells[0]}  {cells[1]}", list(zip(ROUTE_COLUMNS[2:], cells[2:])),
                      "" if route.selected else "dim") for cells, route in zip(rows, table.routes)]
    styles = ["" if route.selected else "dim" for route in table.routes]
    lines += table_or_stacked(ROUTE_COLUMNS, rows, records, width, styles=styles)
    if peers:
        lines += [*wrapped("", width), *wrapped(f"{node}: BGP sessions", width, style="bold")]
        cells = [[f"{s.neighbor} {s.name}", str(s.remote_as), s.state, str(s.prefixes_received or 0),
                  s.uptime] for s in peers]
        records = [Record(row[0], list(zip(SESSION_COLUMNS[1:], row[1:]))) for row in cells]
        lines += table_or_stacked(SESSION_COLUMNS, cells, records, width, frozenset({"routes in"}))
    for line in lines:
        out.print(line, soft_wrap=False)


@click.command(name="link")
@LAB_OPTION
@click.argument("state", type=click.Choice(["down", "up"]))
@click.argument("node")
@click.argument("network")
@click.option("--watch", "watched", metavar="ROUTER", help="Then show each change of ROUTER's routing "
              "table, timed from the link change, until it is quiet for 5 s (at most 60 s).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def link_command(lab_name: str | None, state: str, node: str, network: str, watched: str | None,
                 as_json: bool) -> None:
    """Take NODE's interface on NETWORK down, or bring it up again. Routers running BGP or
    OSPF notice and choose another way; watch it with --watch, `lab routes` and `lab trace`.

    Example: lab link down site-router link-shop-a --watch isp-a-edge
    """
    backend = open_backend()
    lab = choose_lab(backend, lab_name)
    before = selected_routes(backend, lab, watched) if watched else {}
    interface, kernel_state = backend.set_link(lab, node, network, state == "up")
    changes = [{"seconds": round(at, 2), "prefix": prefix, "before": old, "now": new}
               for at, prefix, old, new in (watch_changes(backend, lab, watched, before) if watched else [])]
    if as_json:
        click.echo(json.dumps({"node": node, "network": network, "interface": interface, "asked": state,
                               "kernel_state": kernel_state, "watched": watched, "changes": changes}, indent=2))
        return
    out.print(f"{node}:{network} ({interface}) is now {kernel_state.lower()} (the kernel's operstate)",
              highlight=False)
    if watched:
        _print_changes(watched, changes, kernel_state.lower())


def _print_changes(router: str, changes: list[dict], state: str) -> None:
    """Each change as it was polled, timed from the moment the kernel was seen in its state (the
    change itself came a little earlier; each poll adds up to 0.2 s plus one vtysh call)."""
    width = out.width
    lines = wrapped(f"{router}'s routes in use, read at each poll; seconds after the link was seen {state}:",
                    width, style="bold")
    for change in changes:
        lines += wrapped(f"+{change['seconds']:.1f} s  {change['prefix']}: {change['before'] or '(none)'}"
                         f" -> {change['now'] or '(none)'}", width, 0, 10)
    if not changes:
        lines += wrapped("no change within the watch", width)
    for line in lines:
        out.print(line, soft_wrap=False)


COMMANDS = [routes_command, link_command]
