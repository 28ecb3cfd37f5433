"""The order `lab up` starts nodes and makes networks in, when several could go at once."""

import types

from lab.backends.docker.apply import _busiest_first, _networks_to_make
from lab.plan import LabState, make_plan
from lab.topology import load_topology


def _decisions(plan) -> dict:
    return {c.name: types.SimpleNamespace(plan=c) for c in plan.containers}


def default_plan(root):
    return make_plan(load_topology(root / "topology" / "default.yaml"), LabState())


def test_the_nodes_most_others_wait_on_go_first_and_ties_keep_the_plans_order(root):
    plan = default_plan(root)
    order = _busiest_first(_decisions(plan))
    assert sorted(order) == sorted(c.name for c in plan.containers)
    # three apps wait on the database and on the firewall; the resolver and the laptop on
    # the ISP's router and the root server; nothing waits on a web server
    assert set(order[:2]) == {"db", "fw"}
    assert set(order[2:4]) == {"isp-router", "root-1"}
    plain = [c.name for c in plan.containers if c.name in ("tld-test", "ns-shop", "lb", "web-1", "web-2")]
    assert [name for name in order if name in plain] == plain


def test_a_dependency_cycle_does_not_hang_the_ordering():
    a = types.SimpleNamespace(plan=types.SimpleNamespace(depends_on=("b",)))
    b = types.SimpleNamespace(plan=types.SimpleNamespace(depends_on=("a",)))
    assert sorted(_busiest_first({"a": a, "b": b})) == ["a", "b"]


def test_missing_networks_are_made_in_the_order_the_first_nodes_need_them(root):
    plan = default_plan(root)
    decisions = _decisions(plan)
    order = _busiest_first(decisions)
    made = [net.docker_name for net in _networks_to_make(plan, {}, decisions, order)]
    assert sorted(made) == sorted(net.docker_name for net in plan.networks)
    first_node_networks = list(plan.container(order[0]).addresses)
    assert made[:len(first_node_networks)] == first_node_networks
    # a network the engine has already is never made again
    existing = {made[0]: object()}
    assert made[0] not in [net.docker_name for net in _networks_to_make(plan, existing, decisions, order)]
