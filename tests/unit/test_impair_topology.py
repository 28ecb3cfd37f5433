"""`impair:` in the topology: checked at load with file and line, resolved per link, told short."""

from __future__ import annotations

import pytest

from lab.impair import Impairment, describe_qdisc
from lab.links import declared
from lab.topology import TopologyError, load_text

BASE = """name: imp
networks:
  home: {subnet: 100.64.10.0/24%s}
  isp: {subnet: 100.64.0.0/24}
nodes:
  laptop:
    kind: client
    networks: [home]%s
  router:
    kind: router
    networks: [home, isp]
  far:
    kind: client
    networks: [isp]
"""


def lab_with(network: str = "", node: str = ""):
    return load_text(BASE % (network, node), "imp.yaml")


def test_a_network_impairs_every_link_on_it_and_a_node_overrides_its_own():
    lab = lab_with(", impair: {rate: 4mbit}", "\n    impair:\n      home: {delay: 50ms, loss: 1%}")
    links = declared(lab)
    assert links == {"laptop:home": Impairment(rate="4mbit", delay="50ms", loss="1%"),
                     "router:home": Impairment(rate="4mbit")}
    assert "far:isp" not in links and "router:isp" not in links


def test_nothing_declared_is_nothing_to_do():
    assert declared(lab_with()) == {}


@pytest.mark.parametrize("network, node, words", [
    (", impair: {rate: fast}", "", "'fast' is not understood: write it like 2mbit or 500kbit"),
    (", impair: {delay: 50}", "", "50 has no unit: write it like 50ms"),
    (", impair: {loss: 1}", "", "1 has no unit: write it like 1%"),
    (", impair: {jitter: 5ms}", "", "jitter needs a delay to vary"),
    (", impair: {}", "", "an impair block says at least one of rate, delay"),
    (", impair: {speed: 1mbit}", "", "speed"),
    ("", "\n    impair:\n      isp: {rate: 1mbit}", "'isp' is not one of this node's networks (home)"),
])
def test_wrong_impairments_name_the_file_line_and_the_fix(network, node, words):
    with pytest.raises(TopologyError) as caught:
        lab_with(network, node)
    text = str(caught.value)
    assert words in text and "imp.yaml:" in text, text
    line = 3 if network else 10   # the network line, or the node's `isp:` key
    assert f"imp.yaml:{line}:" in text, text


def test_a_qdisc_line_is_told_without_its_handle_parent_and_refcount():
    assert describe_qdisc("qdisc tbf 8001: root refcnt 2 rate 4Mbit burst 5000b lat 200ms") == \
        "tbf rate 4Mbit burst 5000b lat 200ms"
    assert describe_qdisc("qdisc tbf 10: parent 1:1 rate 2Mbit burst 3200b lat 200ms") == \
        "tbf rate 2Mbit burst 3200b lat 200ms"
    assert describe_qdisc("not tc") == "not tc"


def test_the_graph_shows_declared_impairments_on_networks_and_nodes():
    from lab.graph.model import build_graph
    from lab.graph.text import to_dot, to_mermaid

    lab = lab_with(", impair: {rate: 4mbit}", "\n    impair:\n      home: {delay: 50ms}")
    graph = build_graph(lab)
    assert next(n for n in graph.networks if n.name == "home").impair == "rate 4mbit"
    assert next(n for n in graph.nodes if n.name == "laptop").note == "home: delay 50ms"
    assert "rate 4mbit" in to_mermaid(graph) and "rate 4mbit" in to_dot(graph)
    assert all(n.impair == "" for n in build_graph(lab_with()).networks)


class RecordingBackend:
    """Only what apply_declared asks of an engine, recorded (a stand-in for ordering and choices;
    tests/integration/test_impair.py checks the real kernel's qdiscs)."""

    def __init__(self, netem: bool = False, supported: bool = True):
        self.netem, self.supported, self.calls = netem, supported, []

    def netem_available(self, lab):
        if not self.supported:
            from lab.errors import NotSupported
            raise NotSupported("impairing links is not supported on the test backend")
        return self.netem

    def impair(self, lab, node, network, impairment):
        from lab.impair import Applied
        self.calls.append((node, network, impairment))
        return Applied(node, network, "eth0", [])


def test_lab_up_applies_rates_without_netem_and_clears_what_was_removed(tmp_path, monkeypatch):
    from lab.links import apply_declared
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    backend = RecordingBackend(netem=False)
    report = apply_declared(backend, lab_with(", impair: {rate: 4mbit, delay: 20ms}"))
    assert sorted(backend.calls) == [("laptop", "home", Impairment(rate="4mbit")),
                                     ("router", "home", Impairment(rate="4mbit"))]
    assert "laptop:home (delay 20ms)" in report.netem_sentence
    backend.calls.clear()
    report = apply_declared(backend, lab_with())
    assert sorted(backend.calls) == [("laptop", "home", Impairment()), ("router", "home", Impairment())]
    assert sorted(report.cleared) == ["laptop:home", "router:home"]
    backend.calls.clear()
    assert apply_declared(backend, lab_with()).applied == [] and backend.calls == []   # nothing to do


def test_an_engine_that_cannot_impair_leaves_the_lab_up_and_says_so(tmp_path, monkeypatch):
    from lab.links import apply_declared
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    report = apply_declared(RecordingBackend(supported=False), lab_with(", impair: {delay: 20ms}"))
    assert report.unsupported.startswith("the topology's impair: was not applied: impairing links")
