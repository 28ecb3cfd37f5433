"""`lab up` as a transaction, one writer per lab, signals and leftovers, on a real engine.

Each test checks what the program says against what the engine shows: container
ids, the live files inside a node, the lab's own checks, the list of objects
left with the lab's label.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from lab.checks import run_checks
from lab.errors import RuntimeFailure
from lab.plan import make_plan
from lab.backends.docker import apply
from lab.backends.docker.backend import DockerBackend
from lab.backends.docker.engine import NodeFailed
from lab.state import ensure_lab_state
from lab.topology import load_text

from tests.engine_requests import counted

from .conftest import ids, running_lab, topology_text


def with_broken_node(plan, node: str, after: tuple[str, ...] = ()):
    """The plan with one node whose routes cannot be installed, started only once the nodes
    `after` are ready (an order made for the test): it fails late, after they changed."""
    victim = plan.container(node)
    broken = dataclasses.replace(victim, files=MappingProxyType(
        {**victim.files, "routes": "192.0.2.0/24 via 198.51.100.1\n"}), depends_on=after)
    return dataclasses.replace(plan, containers=tuple(broken if c.name == node else c for c in plan.containers))


@pytest.fixture(scope="module")
def shop(engine, images):
    with running_lab(engine, topology_text("default", "it-txn")) as lab:
        yield lab


def test_a_failed_update_leaves_the_running_lab_exactly_as_it_was(shop, engine):
    text = topology_text("default", "it-txn")
    before = ids(engine, shop.name)
    rules_before = shop.exec("fw", "cat", "/lab/iptables.rules")[1]
    nginx_before = shop.exec("lb", "cat", "/etc/nginx/nginx.conf")[1]
    # The edit recreates the app servers (new port) and reloads the firewall in place; the load
    # balancer, made to wait for the apps, is recreated last and fails, after all of that was done.
    edited = (text.replace("ports: 8000}", "ports: 8080}")
              .replace("    replicas: 3\n", "    replicas: 3\n    port: 8080\n"))
    lab = load_text(edited, "<edited>")
    plan = with_broken_node(make_plan(lab, ensure_lab_state(lab)), "lb", after=("app-1", "app-2", "app-3", "fw"))
    events: list[tuple[str, str, str]] = []
    with pytest.raises(NodeFailed) as caught:
        apply.up(engine, plan, lambda *e: events.append(e))
    assert caught.value.node == "lb"
    changed = {subject for event, subject, _ in events if event == "ready"}
    assert {"app-1", "app-2", "app-3", "fw"} <= changed, events   # the edit really got that far
    assert any(event == "rollback" for event, *_ in events)
    assert ids(engine, shop.name) == before          # same containers: restored, not remade
    assert shop.exec("fw", "cat", "/lab/iptables.rules")[1] == rules_before
    assert shop.exec("fw", "sh", "-c", "iptables-save | grep -c 'dport 8080'")[1].strip() == "0"
    assert shop.exec("lb", "cat", "/etc/nginx/nginx.conf")[1] == nginx_before
    failed = [r for r in run_checks(DockerBackend(engine), shop.lab) if not r.passed]
    assert not failed, [r.as_dict() for r in failed]


def test_a_plan_that_cannot_apply_is_refused_before_any_change(shop, engine):
    before = ids(engine, shop.name)
    text = topology_text("default", "it-txn")
    edited = text.replace("    replicas: 3\n", "    replicas: 3\n    port: 8080\n").replace(
        "nodes:\n", "nodes:\n  visitor:\n    kind: client\n    networks: [home]\n", 1)
    lab = load_text(edited, "<edited>")
    squatter = engine.containers.create("lab/base:latest", name=f"{shop.name}-visitor", command=["true"])
    try:
        with pytest.raises(RuntimeFailure) as caught:
            apply.up(engine, make_plan(lab, ensure_lab_state(lab)))
    finally:
        squatter.remove(force=True)
    message = str(caught.value)
    assert "nothing was changed" in message and f"{shop.name}-visitor" in message
    assert "not part of this lab" in message
    assert ids(engine, shop.name) == before


def test_kept_nodes_are_trusted_after_a_clean_run_and_probed_and_repaired_after_a_killed_one(shop, engine):
    # What a killed `up` leaves: a node running without its lab routes (the route helper never ran).
    app = engine.containers.get(f"{shop.name}-app-2")
    engine.containers.run(app.image.id, entrypoint=["/bin/sh", "-c", "ip route del default"],
                          network_mode=f"container:{app.id}", cap_add=["NET_ADMIN"], remove=True)
    assert app.exec_run(["ip", "route", "show", "default"]).output.strip() == b""
    # The last run ended cleanly (its ledger is there): nodes are trusted, none is asked anything.
    with counted(engine) as requests:
        report = shop.up()
    assert "app-2" in report.unchanged and not report.repaired
    assert requests.per_object() == [], requests.counts()
    # A killed run removed the ledger first thing and never wrote it back.
    engine.volumes.get(f"{shop.name}.ledger").remove()
    report = shop.up()
    assert report.repaired == ["app-2"] and not report.recreated
    assert app.exec_run(["ip", "route", "show", "default"]).output.strip() != b""
    assert engine.containers.get(f"{shop.name}-app-2").id == app.id
