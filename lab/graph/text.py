"""The topology as Mermaid and Graphviz DOT text (paste into docs, or render with their tools)."""

from __future__ import annotations

import re

from lab.graph.model import Graph, kind_colours, kind_shape

# How each kind's shape is drawn: Mermaid brackets around the label, and DOT's shape (DOT draws
# every box rounded; ellipses are the networks').
MERMAID_SHAPES = {"box": ('["', '"]'), "round": ('("', '")'), "hexagon": ('{{"', '"}}'),
                  "cylinder": ('[("', '")]')}
DOT_SHAPES = {"box": "box", "round": "box", "hexagon": "hexagon", "cylinder": "cylinder"}


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for network in graph.networks:
        impair = f"<br/>{network.impair}" if network.impair else ""
        lines.append(f'  net_{_id(network.name)}(["{network.name}<br/>{network.subnet}{impair}"])')
    for node in graph.nodes:
        label = f"{node.name}<br/><i>{node.kind}</i>" + (f"<br/>{node.note}" if node.note else "")
        opening, closing = MERMAID_SHAPES.get(kind_shape(node.kind), MERMAID_SHAPES["box"])
        lines.append(f'  {_id(node.name)}{opening}{label}{closing}:::{_id(node.kind)}')
        for network, address in node.addresses.items():
            lines.append(f"  {_id(node.name)} ---|{address}| net_{_id(network)}")
    for system, members in _members(graph).items():
        lines.append(f'  subgraph as_{_id(system)}["{_title(graph, system)}"]')
        lines += [f"    net_{_id(name)}" if network else f"    {_id(name)}" for network, name in members]
        lines.append("  end")
    for kind, colour in kind_colours().items():
        lines.append(f"  classDef {_id(kind)} fill:{colour},color:#111")
    return "\n".join(lines) + "\n"


def _title(graph: Graph, system: str) -> str:
    return f"AS{graph.systems[system].number} {system}" if system in graph.systems else system


def _members(graph: Graph) -> dict[str, list[tuple[bool, str]]]:
    """Each AS's networks and routers ((is a network, name)), for drawing the AS around them."""
    members: dict[str, list[tuple[bool, str]]] = {}
    for network in graph.networks:
        if network.system:
            members.setdefault(network.system, []).append((True, network.name))
    for node in graph.nodes:
        if node.system:
            members.setdefault(node.system, []).append((False, node.name))
    return members


def to_dot(graph: Graph) -> str:
    lines = [f'graph "{graph.lab}" {{', "  rankdir=LR;", '  node [fontname="sans-serif"];']
    for network in graph.networks:
        lines.append(f'  "net:{network.name}" [shape=ellipse, style=filled, fillcolor="#dddddd", '
                     f'label="{network.name}\\n{network.subnet}'
                     + (f'\\n{network.impair}' if network.impair else '') + '"];')
    colours = kind_colours()
    for node in graph.nodes:
        note = f"\\n{node.note}" if node.note else ""
        shape = DOT_SHAPES.get(kind_shape(node.kind), "box")
        lines.append(f'  "{node.name}" [shape={shape}, style="rounded,filled", fillcolor="{colours[node.kind]}", '
                     f'label="{node.name}\\n{node.kind}{note}"];')
        for network, address in node.addresses.items():
            lines.append(f'  "{node.name}" -- "net:{network}" [label="{address}"];')
    for system, members in _members(graph).items():   # an AS is a shaded cluster around its own
        names = [f'"net:{name}"' if network else f'"{name}"' for network, name in members]
        lines.append(f'  subgraph "cluster_{system}" {{ label="{_title(graph, system)}"; style=filled; '
                     f'fillcolor="#eef3fb"; {"; ".join(names)}; }}')
    lines.append("}")
    return "\n".join(lines) + "\n"
