"""Commands that act on a lab in the engine: up, down, status, exec, logs, ls, stop, start, build."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click
from rich.table import Table

from lab.backends import BACKENDS, open_backend
from lab.backends.protocol import UpReport
from lab.cli import classroom
from lab.cli.check_report import check_lab, classroom_check
from lab.cli.common import (LAB_OPTION, TOPOLOGY_ARG, check_lab_name, check_zones_with_bind, choose_lab, err, out,
                            running_topology)
from lab.errors import LabError, NotSupported, UsageError
from lab.export.kubernetes_links import LINK_MODES
from lab.interrupts import shielded, stop_on_signals
from lab.impair import describe_qdisc
from lab.layout import Record, fitted, table_or_stacked, wrapped
from lab.impair_live import compare, observe
from lab.links import LinkReport, apply_declared, declared
from lab.lock import lab_writer
from lab.plan import make_plan
from lab.state import ensure_lab_state
from lab.topology import default_topology_path, load_topology

EVENT_MARKS = {"ready": "[green]✓[/]", "network": "[cyan]+[/]", "removed": "[yellow]-[/]",
               "rollback": "[red]![/]", "down": "[green]✓[/]"}


def _print_event(event: str, subject: str, detail: str) -> None:
    out.print(f"  {EVENT_MARKS.get(event, '·')} {event:<8} {subject:<14} {detail}", highlight=False)


class _BuildProgress:
    """Shows each build step once, so a cold build visibly moves without flooding the terminal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.announced: set[str] = set()

    def __call__(self, image: str, line: str) -> None:
        line = line.strip()
        with self.lock:
            if image not in self.announced:
                self.announced.add(image)
                out.print(f"  [cyan]⚙[/] building image {image} (first run, or its files changed)")
            # The Debian base's own steps too: why the first half-minute of a fresh machine goes.
            if line.startswith("Step ") or line.lower().startswith(("debootstrap", "pulling", "importing",
                                                                    "no registry", "running ")):
                out.print(f"      [dim]{fitted(f'{image}: {line}', 80 - 6)}[/]", highlight=False)


def _interrupted(name: str, error: KeyboardInterrupt, what: str) -> None:
    signal_name = error.args[0] if error.args else "SIGINT"
    err.print(f"lab '{name}': interrupted by {signal_name}; {what}", highlight=False)
    sys.exit(getattr(error, "exit_code", 130))


@click.command()
@TOPOLOGY_ARG
@click.option("--check", "then_check", is_flag=True, help="Then run the topology's checks (exit 1 if any fails).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="With --check: JUnit XML file.")
@click.option("--copies", type=int, default=None, metavar="N",
              help="A classroom: N copies of the lab, each with its own name (NAME-1 ...) and addresses.")
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --copies: a file of owners, one per line; one copy each.")
@click.option("--backend", "backend_name", type=click.Choice(BACKENDS), default=None,
              help="Where the lab runs (default: $LAB_BACKEND, else docker); other commands follow $LAB_BACKEND.")
@click.option("--context", default=None, metavar="C", help="kubernetes: the kubeconfig context (default: current).")
@click.option("--namespace", default=None, metavar="NS", help="kubernetes: the lab's namespace (default: lab-NAME).")
@click.option("--links", type=click.Choice(LINK_MODES), default="bridge", show_default=True,
              help="kubernetes: a lab network on one cluster node (bridge) or joined across nodes (vxlan).")
def up(file: Path | None, then_check: bool, junit: Path | None, copies: int | None, roster: Path | None,
       backend_name: str | None, context: str | None, namespace: str | None, links: str) -> None:
    """Bring a lab up, or change a running one to match its topology."""
    lab = load_topology(file)
    backend = open_backend(backend_name, context, namespace, links)
    if copies is not None or roster is not None:
        if namespace:
            raise UsageError("--namespace names one lab's namespace: leave it out with --copies "
                             "(each copy gets its own, lab-NAME-K)")
        _up_classroom(backend, lab, copies, roster, then_check, junit)
        return
    if lab.spec.zones:
        _build_then_preflight(lab, backend)
    with lab_writer(lab.name, "up"), stop_on_signals():
        try:
            plan = make_plan(lab, ensure_lab_state(lab))
            out.print(f"lab '{lab.name}' from {lab.file}: {len(plan.containers)} nodes, "
                      f"{len(plan.networks)} networks", highlight=False)
            report = backend.up(plan, _print_event, _BuildProgress())
        except KeyboardInterrupt as error:
            _interrupted(lab.name, error, "this run's changes were undone: the lab is as it was")
        _print_up_summary(lab.name, report)
        _print_links(apply_declared(backend, lab))
    if then_check:
        if not check_lab(lab, junit, as_json=False, backend=backend):
            sys.exit(1)


def _build_then_preflight(lab, backend) -> None:
    """Every image the lab needs first, side by side and with progress (on a fresh machine,
    a minute: the pre-flight needs BIND's image, and building it alone first, in silence,
    made every other image wait for it), then BIND's zone pre-flight."""
    with stop_on_signals():
        try:
            backend.build(sorted({instance.kind for instance in lab.instances}), _BuildProgress())
        except NotSupported:
            pass   # a backend that builds nothing (kubernetes: images are loaded onto its nodes)
        except KeyboardInterrupt as error:
            _interrupted(lab.name, error, "nothing of the lab was made yet")
    _preflight(lab, backend)


def _preflight(lab, backend) -> None:
    """A zone BIND would refuse stops here, before any change; an engine that cannot run BIND's
    pre-flight says so, and the zones are judged when their servers start instead."""
    try:
        check_zones_with_bind(lab, backend)
    except NotSupported as error:
        err.print(f"note: {error}; BIND's zone pre-flight is skipped (a zone it refuses shows when its "
                  "server starts)", highlight=False)


def _up_classroom(backend, lab, copies: int | None, roster: Path | None, then_check: bool,
                  junit: Path | None) -> None:
    owners = classroom.owners_for(copies, roster)
    file = Path(lab.file)
    if lab.spec.zones:
        _build_then_preflight(lab, backend)
    out.print(f"lab '{lab.name}' from {lab.file}: {len(owners)} copies", highlight=False)
    with stop_on_signals():
        try:
            outcomes = classroom.up_copies(backend, file, owners)
        except KeyboardInterrupt as error:
            _interrupted(lab.name, error, "the copy being made was undone; copies already up stay up "
                         f"(`lab down {file} --copies` removes them)")
    for outcome in outcomes:
        who = classroom.describe(outcome.name, outcome.owner)
        if outcome.error:
            _print_copy_failure(who, outcome.error)
        else:
            out.print(f"  [green]✓[/] {who} is up ({outcome.seconds:.1f} s)", highlight=False)
    failed = [o for o in outcomes if o.error]
    out.print(f"{len(outcomes) - len(failed)} of {len(outcomes)} copies up"
              + (f"; failed: {', '.join(o.name for o in failed)}" if failed else ""), highlight=False)
    # The copies that came up are graded even when another did not: the class goes on with them.
    checks_passed = classroom_check(backend, file, junit) if then_check and len(failed) < len(outcomes) else True
    if failed or not checks_passed:
        sys.exit(1)


def _print_copy_failure(who: str, error: str) -> None:
    """✗ COPY: the error's first line, then its detail lines, each wrapped to the terminal."""
    first, *details = error.splitlines()
    lines = wrapped(f"✗ {who}: {first}", err.width, indent=2, hang=4, style="red")
    for detail in details:
        stripped = detail.lstrip()
        bullet = len(stripped) - len(stripped.lstrip("- "))      # a "- " item's words align after it
        lines += wrapped(stripped, err.width, indent=4, hang=4 + bullet)
    for line in lines:
        err.print(line, soft_wrap=False)


def _print_links(report: LinkReport) -> None:
    for applied in report.applied:
        shaped = [describe_qdisc(q) for q in applied.qdiscs if q.split()[1:2] in (["tbf"], ["netem"])]
        out.print(f"  [magenta]~[/] impaired {applied.node}:{applied.network} ({applied.interface}): "
                  f"{'; '.join(shaped) or 'no impairment (none of it can work here)'}", highlight=False)
    for link in report.cleared:
        out.print(f"  [magenta]~[/] cleared  {link} (its impair: is gone from the topology)", highlight=False)
    for sentence in (report.netem_sentence, report.unsupported):   # wrapped between words
        for line in wrapped(f"  ! {sentence}", err.width, hang=4) if sentence else []:
            err.print(line, soft_wrap=False)


def _print_up_summary(name: str, report: UpReport) -> None:
    if not report.changed:
        out.print(f"lab '{name}' is up to date: nothing changed ({report.seconds:.1f} s)", highlight=False)
        return
    parts = [f"{len(getattr(report, key))} {key}" for key in ("created", "recreated", "reloaded", "started",
                                                              "repaired", "removed", "unchanged")
             if getattr(report, key)]
    out.print(f"lab '{name}' is up: {', '.join(parts)} in {report.seconds:.1f} s", highlight=False)


@click.command()
@TOPOLOGY_ARG
@LAB_OPTION
@click.option("--volumes", is_flag=True, help="Also delete the lab's data volumes (the database's data).")
@click.option("--copies", "all_copies", is_flag=True, help="Remove every classroom copy of FILE instead.")
@click.option("--backend", "backend_name", type=click.Choice(BACKENDS), default=None,
              help="Where the lab runs (default: $LAB_BACKEND, else docker).")
def down(file: Path | None, lab_name: str | None, volumes: bool, all_copies: bool,
         backend_name: str | None) -> None:
    """Remove a lab's containers and networks (data volumes are kept unless --volumes)."""
    backend = open_backend(backend_name)
    if all_copies:
        file = file or default_topology_path()
        with shielded(lambda: err.print("lab down is finishing, please wait")):
            removed = classroom.down_copies(backend, file, volumes)
        out.print(f"{len(removed)} copies of {file} removed" + (f": {', '.join(removed)}" if removed else ""),
                  highlight=False)
        return
    if lab_name is not None:
        check_lab_name(lab_name, [lab_name] if backend.lab_exists(lab_name) else [])
    name = lab_name or (load_topology(file).name if file else choose_lab(backend, None))
    notice = lambda: err.print("lab down is finishing, please wait (nothing is left half-removed)")  # noqa: E731
    with lab_writer(name, "down"), shielded(notice):
        report = backend.down(name, volumes=volumes)
    kept = "" if volumes else "; data volumes kept (--volumes deletes them)"
    if report.link_hosts:     # each cluster node's own pod reported its devices gone
        kept = f"; VXLAN links removed from {report.link_hosts} cluster nodes{kept}"
    out.print(f"lab '{name}' is down: {len(report.containers)} containers, {len(report.networks)} networks "
              f"removed{', ' + str(len(report.volumes)) + ' volumes deleted' if volumes else ''}{kept}",
              highlight=False)


@click.command()
@LAB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="The lab's topology file, to compare impairments with (default: the running lab's own).")
def status(lab_name: str | None, as_json: bool, file: Path | None) -> None:
    """Every node of a lab: kind, addresses, state and health (its readiness probe, run now),
    and every impaired link as the kernel holds it (tc in each node), against the topology's."""
    backend = open_backend()
    name = choose_lab(backend, lab_name)
    rows = backend.status(name)
    shaping = _observed_impairments(backend, name, rows, file)
    if as_json:
        click.echo(json.dumps({"lab": name, "nodes": [row.as_dict() for row in rows],
                               "impairments": [s.as_dict() for s in shaping]}, indent=2))
        return
    if not rows:
        out.print(f"lab '{name}' has no containers (bring it up with `lab up`)", highlight=False)
        return
    table = Table(title=f"lab {name}")
    for column in ("node", "kind", "addresses", "state", "health"):
        # Names and states are never cut; addresses go one per line, each "network address" whole.
        table.add_column(column, no_wrap=column != "addresses")
    for row in rows:
        colour = "green" if row.health == "ready" else "red"
        addresses = "\n".join(f"{net} {address}" for net, address in row.addresses.items())
        table.add_row(row.node, row.kind, addresses, row.state, f"[{colour}]{row.health}[/]")
    out.print(table)
    for line in _impairment_lines(shaping, out.width):
        out.print(line, soft_wrap=False)


def _observed_impairments(backend, name: str, rows, file: Path | None) -> list:
    """The impaired links the kernel holds (read in each running node), each against what the
    lab's topology declares; without a readable topology, only what the kernel holds."""
    running = {row.node: row.addresses for row in rows if row.state == "running"}
    observed = observe(backend, name, running) if running else []
    try:
        topology = running_topology(backend, name, file)
    except LabError:
        if file is not None:
            raise   # the file asked for is broken: say so (exit 2), do not compare silently with nothing
        return observed
    wanted = {link: i for link, i in declared(topology).items() if link.split(":", 1)[0] in running}
    return compare(observed, wanted, lambda: backend.netem_available(name))


def _impairment_lines(shaping: list, width: int) -> list:
    if not shaping:
        return []
    lines = wrapped("impaired links (tc in each node; they shape what the node sends):", width)
    for one in shaping:
        held = "; ".join(one.qdiscs) or "nothing"
        lines += wrapped(f"{one.link} ({one.interface}): {held}", width, 2, hang=4)
        if one.differs:
            lines += wrapped(f"! differs: {one.differs}", width, 4, hang=6, style="yellow")
        elif one.expected:
            lines += wrapped(f"as the topology declares ({one.expected})", width, 4, hang=6, style="dim")
    return lines


@click.command(name="ls")
@click.option("--json", "as_json", is_flag=True)
def list_labs(as_json: bool) -> None:
    """The labs on this engine."""
    labs = open_backend().list_labs()
    if as_json:
        click.echo(json.dumps([entry.as_dict() for entry in labs], indent=2))
        return
    if not labs:
        out.print("no labs on this engine")
        return
    owners = any(entry.owner for entry in labs)   # a classroom's copies (lab up --roster) show whose
    columns = ["lab", "containers", "running", *(["owner"] if owners else []), "file"]
    rows = [[e.lab, str(e.containers), str(e.running), *([e.owner] if owners else []), e.file] for e in labs]
    records = [Record(e.lab, [("containers", str(e.containers)), ("running", str(e.running)),
                              *([("owner", e.owner)] if owners else []), ("file", e.file)]) for e in labs]
    # A table when it fits, else one block a lab: a topology's path is never cut.
    for line in table_or_stacked(columns, rows, records, out.width, right=frozenset({"containers", "running"})):
        out.print(line, soft_wrap=False)


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@LAB_OPTION
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(lab_name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in NODE: lab exec laptop -- curl -sI https://www.shop.test/"""
    backend = open_backend()
    sys.exit(backend.attach(choose_lab(backend, lab_name), node, list(command)))


@click.command()
@LAB_OPTION
@click.argument("node")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", default="all", help="Only the last N lines.")
def logs(lab_name: str | None, node: str, follow: bool, tail: str) -> None:
    """Print a node's log."""
    backend = open_backend()
    for chunk in backend.logs(choose_lab(backend, lab_name), node, follow, int(tail) if tail.isdigit() else "all"):
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()


@click.command()
@LAB_OPTION
@click.argument("node")
def stop(lab_name: str | None, node: str) -> None:
    """Stop one node (to break things on purpose); `lab start NODE` brings it back."""
    backend = open_backend()
    name = choose_lab(backend, lab_name)
    with lab_writer(name, f"stop {node}"):
        backend.stop(name, node)
    out.print(f"node '{node}' stopped", highlight=False)


@click.command()
@LAB_OPTION
@click.argument("node")
def start(lab_name: str | None, node: str) -> None:
    """Start a stopped node and wait until it is ready."""
    backend = open_backend()
    name = choose_lab(backend, lab_name)
    with lab_writer(name, f"start {node}"):
        seconds = backend.start(name, node)
    out.print(f"node '{node}' started, ready in {seconds:.1f} s", highlight=False)


@click.command()
@TOPOLOGY_ARG
@click.option("--force", is_flag=True, help="Rebuild even if the images are up to date.")
@click.option("--no-browser", is_flag=True, help="Skip the browser helper's image (Chromium, for lab browse).")
def build(file: Path | None, force: bool, no_browser: bool) -> None:
    """Build (or reuse) the images a topology needs, and the browser helper's (lab browse)."""
    lab = load_topology(file)
    backend = open_backend()
    tags = backend.build(sorted({i.kind for i in lab.instances}), _BuildProgress(), force=force)
    if not no_browser:
        tags["(lab browse)"] = backend.build_browser(_BuildProgress(), force=force)
    for kind, tag in sorted(tags.items()):
        out.print(f"  {kind:<14} {tag}", highlight=False)


COMMANDS = [up, down, status, list_labs, exec_command, logs, stop, start, build]
