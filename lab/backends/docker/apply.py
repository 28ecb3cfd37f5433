"""`lab up` and `lab down`: make the engine match a plan, or remove a lab.

Up is a transaction. It builds images and checks that the plan can apply
before it changes anything; then it compares each planned container with what
runs (a hash of its rendered config is a label), creates what is missing,
replaces what changed (the old container is kept aside until its successor is
ready), reloads live files in place and starts what was stopped. Each node
changes as soon as the nodes it depends on are ready (plan/dependencies.py);
a node counts as up only when its kind's probe passes. If anything fails, or a signal arrives, the workers are stopped and
every change is undone, newest first, so the lab is left as it was.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import docker

from lab.backends.protocol import DownReport
from lab.errors import RuntimeFailure
from lab.interrupts import SLICE_SECONDS, deferred_signals, shielded
from lab.plan import ContainerPlan, NetworkPlan, Plan
from lab.backends.docker.engine import ENGINE_ERRORS, NodeFailed, engine_call
from lab.backends.docker.images import ensure_images
from lab.backends.docker.netns import LABEL_ROLE, ROUTE_HELPER, RouteInstaller
from lab.backends.docker.own_images import ensure_own_images
from lab.backends.docker.node_changes import (NodeChange, UpReport, bring_up, decide, held_addresses, restart_previous,
                                     retire)
from lab.backends.docker.ledger import Ledger, drop_ledger, read_ledger, trusted_live_hash, write_ledger
from lab.backends.docker.objects import (RETIRED_SUFFIX, STOP_GRACE_SECONDS, all_lab_containers, create_network,
                                         is_node, lab_networks, lab_volumes, network_subnets, nodes_by_name,
                                         remove_containers, remove_container, remove_network, rename_container,
                                         stop_gently)
from lab.backends.docker.preflight import check_plan_can_apply, look
from lab.backends.docker.readiness import Cancelled
from lab.backends.docker.transaction import Events, Transaction

__all__ = ["UpReport", "DownReport", "up", "down", "WORKERS"]

# Threads mostly wait on probes: with too few, ready-to-start nodes queued behind slow
# starters (16 made a 100-node lab take 4x its floor, nodes waiting ~40 s for a thread).
WORKERS = 48
NETWORK_WORKERS = 4   # networks made at once, in the order nodes need them


def _leftovers(containers: list) -> list:
    """What an interrupted or killed earlier command left: retired containers, route
    helpers and stopped helpers."""
    return [c for c in containers if c.name.endswith(RETIRED_SUFFIX)
            or (not is_node(c) and (c.labels.get(LABEL_ROLE) == ROUTE_HELPER or c.status != "running"))]


def _tidy_leftovers(client: docker.DockerClient, containers: list, events: Events) -> None:
    """Remove the leftovers; a retired container is put back under its node's name when no
    successor took it."""
    nodes = {c.name for c in containers if is_node(c)}
    for container in _leftovers(containers):
        if container.name.endswith(RETIRED_SUFFIX):
            own_name = container.name.removesuffix(RETIRED_SUFFIX)
            if own_name in nodes:
                remove_container(container)
            else:
                rename_container(container, own_name)
            events("removed" if own_name in nodes else "rollback", own_name, "left by an interrupted run: tidied")
        else:
            remove_container(container)


def _replaced_networks(plan: Plan, current: dict) -> set[str]:
    """Engine names of the lab's networks whose subnet changed (they are made anew)."""
    return {net.docker_name for net in plan.networks
            if net.docker_name in current and network_subnets(current[net.docker_name]) != net.subnets}


def _replace_changed_networks(change: NodeChange, plan: Plan, existing: dict, current: dict) -> None:
    """Remove the networks whose subnet changed, and the nodes on them (all made anew)."""
    for net in plan.networks:
        found = current.get(net.docker_name)
        if found is not None and network_subnets(found) != net.subnets:
            # A new subnet means new addresses for everything on it: those nodes are made anew.
            # Not undone on failure: two networks cannot share the name (docs/lifecycle.md).
            change.events("removed", net.name, f"subnet changed to {' '.join(sorted(net.subnets))}: the network and its nodes are made anew")
            for container in existing.values():
                if net.docker_name in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}):
                    remove_container(container, grace=STOP_GRACE_SECONDS)
            remove_network(found)
            del current[net.docker_name]


def _make_network(change: NodeChange, net: NetworkPlan) -> str:
    made = create_network(change.client, net)
    change.txn.undo_with(net.name, "removing the network made by this run", lambda: remove_network(made))
    change.report.networks_created.append(net.name)
    change.events("network", net.name, net.subnet)
    return net.docker_name


def _networks_to_make(plan: Plan, current: dict, decisions: dict[str, _Decision], order: list[str]) -> list:
    """The missing networks, those of the nodes that start first first: a node starts as soon
    as its own networks exist, not all of the lab's."""
    missing = {net.docker_name: net for net in plan.networks if net.docker_name not in current}
    wanted = [network for name in order for network in decisions[name].plan.addresses if network in missing]
    return [missing[network] for network in dict.fromkeys([*wanted, *missing])]


def _in_worker(pool: ThreadPoolExecutor, work, *args):
    """Run work in a worker and wait for it in short slices. A signal interrupts only the
    waiting: the worker finishes its engine call and records its undo before the rollback
    (which waits for the workers) runs, so nothing made in that instant is left behind. The
    signal is raised between slices, never inside the wait (which holds the future's lock,
    interrupts.deferred_signals)."""
    job = pool.submit(work, *args)
    with deferred_signals() as signals:
        while not concurrent.futures.wait([job], timeout=SLICE_SECONDS).done:
            signals.check()
        signals.check()
    return job.result()


def _retire_removed_nodes(change: NodeChange, plan: Plan, existing: dict) -> None:
    """Nodes no longer in the topology: stopped now, removed only when the run succeeds."""
    planned = {c.name for c in plan.containers}
    for name, container in existing.items():
        if name in planned:
            continue
        if container.status == "running":
            stop_gently(container)
            change.txn.undo_with(name, "starting it again", restart_previous(change, container, name))
        change.txn.after_commit(name, "no longer in the topology", lambda c=container: remove_container(c))
        change.report.removed.append(name)


def _bring_up_node(change: NodeChange, plan, action: str, found, image: str, config_hash: str) -> None:
    try:
        bring_up(change, plan, action, found, image, config_hash)
    except ENGINE_ERRORS as error:   # an engine error is this node's failure, said in words
        raise NodeFailed(plan.name, f"the engine refused a change ({getattr(error, 'explanation', None) or error})") from error


@dataclass(frozen=True)
class _Decision:
    plan: ContainerPlan
    action: str
    found: object        # the existing container, or None
    image: str
    config_hash: str


def _decide_all(pool: ThreadPoolExecutor, plan: Plan, images: dict, own_images: dict, existing: dict,
                replaced: set[str], ledger: Ledger | None) -> dict[str, _Decision]:
    """Each node's decision; made in the workers, since without a ledger each reads a file
    back from its node (one engine round trip): a big lab would pay them one by one."""
    def one(container_plan: ContainerPlan) -> _Decision:
        image = own_images.get(container_plan.name) or images[container_plan.kind]
        config_hash = container_plan.config_hash(image)
        found = existing.get(container_plan.name)
        if found is not None and set(container_plan.addresses) & replaced:
            found = None  # removed with its network
        recorded = trusted_live_hash(ledger, container_plan.name, found)
        return _Decision(container_plan, decide(container_plan, found, config_hash, recorded), found, image,
                         config_hash)
    return {d.plan.name: d for d in pool.map(one, plan.containers)}


def _changes_anything(plan: Plan, existing: dict, current: dict, decisions: dict[str, _Decision]) -> bool:
    planned = {c.name for c in plan.containers}
    return (any(d.action != "keep" for d in decisions.values()) or bool(set(existing) - planned)
            or {n.docker_name for n in plan.networks} != set(current))


def _retire_address_holders(change: NodeChange, decisions: dict[str, _Decision]) -> None:
    """A node being recreated whose address another node now wants is put aside first:
    otherwise the newcomer, started in parallel, finds its address still in use."""
    wanted = {(net, address): name for name, d in decisions.items() for net, address in d.plan.addresses.items()}
    for name, decision in decisions.items():
        if decision.action != "recreate" or decision.found is None:
            continue
        if any(wanted.get(pair, name) != name for pair in held_addresses(decision.found)):
            retire(change, decision.plan, decision.found)


def _first_real_error(jobs) -> BaseException:
    errors = [job.exception() for job in jobs if job.exception() is not None]
    real = [error for error in errors if not isinstance(error, Cancelled)]
    return (real or errors)[0]


def _busiest_first(decisions: dict[str, _Decision]) -> list[str]:
    """The nodes in the order to start them when several can: those that more nodes wait on
    first (the engine starts at once what it is given at once, but not at the same speed:
    the first asked tends to be the first started). Ties keep the plan's order."""
    waiting_on: dict[str, set[str]] = {name: set() for name in decisions}
    for name, decision in decisions.items():
        for dependency in decision.plan.depends_on:
            if dependency in waiting_on:
                waiting_on[dependency].add(name)

    def everyone_waiting(name: str, seen: set[str]) -> set[str]:
        for waiter in waiting_on[name] - seen:
            seen.add(waiter)
            everyone_waiting(waiter, seen)
        return seen

    return sorted(decisions, key=lambda name: -len(everyone_waiting(name, set())))


def _startable(waiting: dict[str, _Decision], decisions: dict[str, _Decision], ready: set[str],
               networks: set[str]) -> list[str]:
    """The waiting nodes (in their order: busiest first) whose networks all exist and whose
    dependencies changed by this run are ready (a node this run leaves alone is ready already)."""
    return [name for name, d in waiting.items()
            if all(dependency in ready for dependency in d.plan.depends_on if dependency in decisions)
            and all(network in networks for network in d.plan.addresses)]


def _run_graph(pool: ThreadPoolExecutor, change: NodeChange, decisions: dict[str, _Decision],
               plan: Plan, current: dict) -> None:
    """Make the missing networks and change every node, each node as soon as its networks
    exist and the nodes it depends on are ready (the critical path decides the time). The
    first failure stops the others waiting and is raised."""
    order = _busiest_first(decisions)
    waiting = {name: decisions[name] for name in order}
    networks = set(current)
    running: dict[concurrent.futures.Future, str] = {}
    finished: list[concurrent.futures.Future] = []
    ready: set[str] = set()
    # A few at a time, asked in the order nodes need them.
    maker = ThreadPoolExecutor(NETWORK_WORKERS, thread_name_prefix="lab-networks")
    made: dict[concurrent.futures.Future, str] = {
        maker.submit(_make_network, change, net): net.docker_name
        for net in _networks_to_make(plan, current, decisions, order)}
    try:
        with deferred_signals() as signals:   # raised between waits, never inside one (it holds locks)
            while waiting or running or made:
                for name in _startable(waiting, decisions, ready, networks):
                    d = waiting.pop(name)
                    running[pool.submit(_bring_up_node, change, d.plan, d.action, d.found, d.image,
                                        d.config_hash)] = name
                if not running and not made:
                    raise RuntimeFailure(f"the nodes {', '.join(sorted(waiting))} wait on each other: "
                                         "a dependency cycle, which is a bug in the planner")
                # Short waits, so a signal reaches the main thread at once.
                done, _ = concurrent.futures.wait([*running, *made], timeout=SLICE_SECONDS,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                signals.check()
                for job in done:
                    if job in made:
                        networks.add(made.pop(job))
                    else:
                        ready.add(running.pop(job))
                    finished.append(job)
                if any(job.exception() for job in done):
                    change.cancel.set()      # the others stop waiting on their probes
                    maker.shutdown(wait=True, cancel_futures=True)
                    concurrent.futures.wait(running)
                    raise _first_real_error(finished + list(running) + [j for j in made if not j.cancelled()])
    finally:   # a signal or a failure: the network being made is finished (and undone with the rest)
        maker.shutdown(wait=True, cancel_futures=True)


def _change_nodes(change: NodeChange, pool: ThreadPoolExecutor, plan: Plan, images: dict,
                  own_images: dict, found: _Found) -> bool:
    """Make the lab match the plan; True when anything changed (or had to be checked)."""
    ledger = found.ledger
    changing = True
    try:
        existing = nodes_by_name(found.containers)
        current = {n.name: n for n in found.networks}
        replaced = _replaced_networks(plan, current)
        decisions = _in_worker(pool, _decide_all, pool, plan, images, own_images, existing, replaced, ledger)
        change.trusted.update(name for name, d in decisions.items()
                              if trusted_live_hash(ledger, name, d.found) is not None)
        changing = len(change.trusted) < len(decisions) or _changes_anything(plan, existing, current, decisions)
        if any(d.action in ("create", "recreate", "start") for d in decisions.values()):
            pool.submit(change.routes.prepare)   # running before the first node starts
        if changing and ledger is not None:
            drop_ledger(change.client, plan.lab)   # kept only by a run that ends with the lab ready
        _in_worker(pool, _retire_removed_nodes, change, plan, existing)
        _in_worker(pool, _replace_changed_networks, change, plan, existing, current)
        _in_worker(pool, _retire_address_holders, change, decisions)
        _run_graph(pool, change, decisions, plan, current)
    except BaseException as error:   # a failure, a signal, even a bug: undo before saying so
        _roll_back(change, pool, error)
        if changing and ledger is not None:   # undone completely: the lab is as its ledger says
            write_ledger(change.client, plan.lab, ledger)
        raise
    pool.shutdown(wait=True)
    return changing


@dataclass
class _Found:
    """The lab as the engine shows it before the run: a few list calls, whatever its size."""

    containers: list     # every container labelled with the lab (summaries)
    networks: list
    ledger: Ledger | None


def _look_at_lab(client: docker.DockerClient, plan: Plan, events: Events) -> _Found:
    """Check the plan can apply, read the lab and its ledger, and tidy what a killed run left
    (which means the ledger, if any, no longer describes the lab)."""
    view = look(client)
    check_plan_can_apply(view, plan)
    found = _Found(view.lab_containers(plan.lab), view.lab_networks(plan.lab), read_ledger(client, plan.lab))
    if _leftovers(found.containers):
        if found.ledger is not None:
            drop_ledger(client, plan.lab)
        _tidy_leftovers(client, found.containers, events)
        found = _Found(all_lab_containers(client, plan.lab), found.networks, None)
    return found


def up(client: docker.DockerClient, plan: Plan, events: Events | None = None,
       build_progress: Callable[[str, str], None] | None = None, images: dict[str, str] | None = None) -> UpReport:
    """images: each kind's image tag when the caller has them already (else found or built here)."""
    events = events or (lambda *_: None)
    started = time.monotonic()
    if images is None:
        images = ensure_images(client, sorted({c.kind for c in plan.containers}), build_progress)
    own_images = ensure_own_images(client, plan, build_progress)   # by node, before anything is made
    found = _look_at_lab(client, plan, events)
    change = NodeChange(client, plan.lab, Transaction(), UpReport(), events, threading.Event(),
                        RouteInstaller(client, plan.lab))
    pool = ThreadPoolExecutor(WORKERS)
    try:
        changed = _change_nodes(change, pool, plan, images, own_images, found)
    finally:   # after the rollback too, which may need it to start old nodes again
        with shielded(lambda: None):
            change.routes.close()
    change.txn.commit(events)
    planned_networks = {n.docker_name for n in plan.networks}
    for network in found.networks:
        if network.name not in planned_networks:
            remove_network(network)
    if changed:   # every node is ready as planned: the next run may trust them
        _write_ledger(client, plan)
    change.report.seconds = time.monotonic() - started
    return change.report


def _write_ledger(client: docker.DockerClient, plan: Plan) -> None:
    """Every node is ready as planned: record which container each is in, and its live files."""
    made = nodes_by_name(all_lab_containers(client, plan.lab))
    write_ledger(client, plan.lab, {c.name: (made[c.name].id, c.live_hash()) for c in plan.containers
                                    if c.name in made})


def _roll_back(change: NodeChange, pool: ThreadPoolExecutor, error: BaseException) -> None:
    """Stop the workers, then undo every change; signals meanwhile only print a notice."""
    notice = lambda: change.events("rollback", change.lab, "rolling back, please wait")  # noqa: E731
    with shielded(notice):
        change.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if not change.txn.has_changes:
            return
        change.events("rollback", change.lab, f"undoing this run's changes ({_why(error)})")
        failures = change.txn.rollback(change.events)
    if failures:
        listed = "\n".join(f"  - {failure}" for failure in failures)
        raise RuntimeFailure(f"{_why(error)}; the rollback could not undo everything:\n{listed}\n"
                             "run `lab up` again to repair the lab, or `lab down` to remove it") from error


def _why(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted by {error.args[0] if error.args else 'SIGINT'}"
    return str(error).splitlines()[0]


def down(client: docker.DockerClient, lab: str, volumes: bool = False,
         events: Events | None = None) -> DownReport:
    """Remove every container and network of a lab; data volumes only when asked.

    Each main process gets a clean shutdown (its image's stop signal, then up to
    STOP_GRACE_SECONDS) before its container is removed: PostgreSQL stops without
    needing crash recovery at its next start."""
    events = events or (lambda *_: None)
    report = DownReport()
    drop_ledger(client, lab)
    everything = all_lab_containers(client, lab)   # nodes, retired nodes and helpers
    remove_containers(everything, STOP_GRACE_SECONDS, WORKERS)
    report.containers = sorted(c.labels.get("lab.node", c.name) for c in everything if is_node(c))
    stuck = []
    for network in lab_networks(client, lab):
        try:
            remove_network(network)
            report.networks.append(network.name)
        except RuntimeFailure as error:   # the others still go; the first refusal is said after
            stuck.append(error)
    if stuck:
        raise stuck[0]
    if volumes:
        for volume in lab_volumes(client, lab):
            with engine_call(f"removing volume {volume.name}"):
                volume.remove(force=True)
            report.volumes.append(volume.name)
    events("down", lab, f"{len(report.containers)} containers, {len(report.networks)} networks removed")
    return report
