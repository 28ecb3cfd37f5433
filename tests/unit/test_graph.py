"""`lab graph` from the file alone: every node and network, in every format."""

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.graph import build_graph, to_dot, to_html, to_mermaid
from lab.topology import load_topology


@pytest.fixture
def lab(root):
    return load_topology(root / "topology" / "default.yaml")


def test_networks_are_ordered_from_the_clients_to_the_site(lab):
    assert [n.name for n in build_graph(lab).networks] == ["home", "isp", "backbone", "dmz", "apps", "data"]


def test_routers_are_marked_as_joining_their_networks(lab):
    nodes = {n.name: n for n in build_graph(lab).nodes}
    assert nodes["home-router"].forwards and not nodes["laptop"].forwards
    assert nodes["fw"].note.endswith("default deny")


@pytest.mark.parametrize("render", [to_mermaid, to_dot, to_html])
def test_every_format_names_every_node_network_and_address(lab, render):
    text = render(build_graph(lab))
    for instance in lab.instances:
        assert instance.name in text
        for address in instance.addresses.values():
            assert str(address) in text
    for name, network in lab.spec.networks.items():
        assert name in text and str(network.subnet) in text


def test_cli_writes_a_file(root, tmp_path):
    target = tmp_path / "g.dot"
    result = CliRunner().invoke(main, ["graph", str(root / "topology" / "minimal.yaml"), "--format", "dot",
                                       "-o", str(target)])
    assert result.exit_code == 0 and target.read_text().startswith('graph "mini"')


def test_text_formats_draw_each_as_around_its_networks_and_routers(root):
    graph = build_graph(load_topology(root / "topology" / "internet.yaml"))
    mermaid, dot = to_mermaid(graph), to_dot(graph)
    block = mermaid[mermaid.index('subgraph as_isp_a["AS64601 isp-a"]'):]
    block = block[:block.index("  end")]
    assert block.split()[3:] == ["net_isp_a_access", "net_isp_a_core", "net_link_shop_a", "isp_a_edge", "isp_a_border"]
    assert ('subgraph "cluster_ixp" { label="AS64650 ixp"; style=filled; fillcolor="#eef3fb"; "net:ixp"; '
            '"ixp-rs"; }') in dot
    assert "subgraph" not in to_mermaid(build_graph(load_topology(root / "topology" / "default.yaml")))
