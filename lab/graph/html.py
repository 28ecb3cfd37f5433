"""The topology as one self-contained HTML page with an SVG picture (no external resources).

Networks are vertical buses from left (clients) to right (the site); each node
is a box with its addresses, joined to the buses it is attached to; routers
and firewalls sit between the networks they join. A small script checks, in
the browser, that every box is inside the page and that no two overlap, and
records the result on <body data-layout="ok|..."> so tests can read it.
"""

from __future__ import annotations

from html import escape

from lab.graph.model import Graph, GraphNode, kind_colours

SLOT = 200  # each network has a slot for its bus, with a slot between neighbours for routers
BOX_WIDTH = 170
LINE_HEIGHT = 15
TOP = 90
GAP = 22
MARGIN = 30


def _box_lines(node: GraphNode) -> list[str]:
    lines = [node.name, node.kind]
    lines += [f"{net} {address}" for net, address in node.addresses.items()]
    return lines + ([node.note] if node.note else [])


def _layout(graph: Graph) -> tuple[dict[str, tuple[float, float, float]], float]:
    """node name -> (centre x, top y, height); and the page height."""
    next_top: dict[float, float] = {}
    placed = {}
    for node in sorted(graph.nodes, key=lambda n: n.column):
        x = _x(node.column)
        top = next_top.get(node.column, TOP)
        height = 10 + LINE_HEIGHT * len(_box_lines(node))
        placed[node.name] = (x, top, height)
        next_top[node.column] = top + height + GAP
    return placed, max(next_top.values(), default=TOP) + MARGIN


def _x(column: float) -> float:
    return MARGIN + column * 2 * SLOT + SLOT / 2


def _svg_links(node: GraphNode, x: float, top: float, height: float, columns: dict[str, int]) -> list[str]:
    # Each link leaves the box at the line that shows the address on that network.
    return [f'<line x1="{x:.0f}" y1="{_line_y(top, 2 + k) - 4:.0f}" x2="{_x(columns[net]):.0f}" '
            f'y2="{_line_y(top, 2 + k) - 4:.0f}" class="link"/>' for k, net in enumerate(node.addresses)]


def _line_y(top: float, index: int) -> float:
    return top + 18 + index * LINE_HEIGHT


def _svg_node(node: GraphNode, x: float, top: float, height: float) -> list[str]:
    parts = []
    colour = kind_colours().get(node.kind, "#cccccc")
    parts.append(f'<g class="node" data-node="{escape(node.name)}" data-kind="{escape(node.kind)}">')
    parts.append(f'<rect x="{x - BOX_WIDTH / 2:.0f}" y="{top:.0f}" width="{BOX_WIDTH}" height="{height:.0f}" '
                 f'rx="8" fill="{colour}"/>')
    for index, line in enumerate(_box_lines(node)):
        weight = ' font-weight="bold"' if index == 0 else ""
        style = ' font-style="italic"' if index == 1 else ""
        parts.append(f'<text x="{x:.0f}" y="{_line_y(top, index):.0f}" text-anchor="middle"'
                     f'{weight}{style}>{escape(line)}</text>')
    parts.append("</g>")
    return parts


def _svg(graph: Graph) -> tuple[str, float, float]:
    placed, height = _layout(graph)
    width = 2 * MARGIN + (2 * len(graph.networks) - 1) * SLOT
    columns = {n.name: n.column for n in graph.networks}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="topology of lab {escape(graph.lab)}">']
    for network in graph.networks:
        x = _x(network.column)
        parts.append(f'<g class="network" data-network="{escape(network.name)}">'
                     f'<line x1="{x:.0f}" y1="{TOP - 30}" x2="{x:.0f}" y2="{height - MARGIN:.0f}" class="bus"/>'
                     f'<text x="{x:.0f}" y="{TOP - 58}" text-anchor="middle" font-weight="bold">{escape(network.name)}</text>'
                     f'<text x="{x:.0f}" y="{TOP - 42}" text-anchor="middle">{escape(network.subnet)}</text>'
                     + (f'<text x="{x:.0f}" y="{TOP - 74}" text-anchor="middle" class="impair">'
                        f'{escape(network.impair)}</text>' if network.impair else '') + '</g>')
    for node in graph.nodes:   # links first, so boxes are drawn over the lines they cross
        parts.extend(_svg_links(node, *placed[node.name], columns))
    for node in graph.nodes:
        parts.extend(_svg_node(node, *placed[node.name]))
    parts.append("</svg>")
    return "\n".join(parts), width, height


CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var boxes = Array.from(document.querySelectorAll('g.node, g.network')).map(function (g) {
    return {name: g.dataset.node || g.dataset.network, node: !!g.dataset.node, r: g.getBoundingClientRect()};
  });
  var page = document.documentElement, problems = [];
  boxes.forEach(function (b, i) {
    if (b.r.width === 0 || b.r.left < 0 || b.r.top < 0 || b.r.right > page.scrollWidth || b.r.bottom > page.scrollHeight)
      problems.push(b.name + ' outside the page');
    boxes.slice(i + 1).forEach(function (o) {
      if (b.node && o.node && b.r.left < o.r.right && o.r.left < b.r.right && b.r.top < o.r.bottom && o.r.top < b.r.bottom)
        problems.push(b.name + ' overlaps ' + o.name);
    });
  });
  document.body.dataset.layout = problems.length ? problems.join('; ') : 'ok';
  document.body.dataset.shown = boxes.map(function (b) { return b.name; }).join(',');
});
"""


def to_html(graph: Graph) -> str:
    svg, width, _ = _svg(graph)
    legend = "".join(f'<span class="kind" style="background:{colour}">{escape(kind)}</span>'
                     for kind, colour in kind_colours().items())
    notes = "".join(f"<li><b>{escape(n.name)}</b> ({escape(n.kind)}, between {escape(', '.join(n.addresses))}): "
                    f"{escape(n.note)}</li>" for n in graph.nodes if n.note)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab {escape(graph.lab)}: topology</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; min-width: {width:.0f}px; }}
svg text {{ font-size: 12px; fill: #111; }}
.bus {{ stroke: #888; stroke-width: 6; stroke-linecap: round; }}
.link {{ stroke: #555; stroke-width: 2; }}
.kind {{ display: inline-block; padding: 2px 8px; margin: 2px; border-radius: 6px; font-size: 12px; }}
</style></head>
<body>
<h1>lab {escape(graph.lab)}</h1>
<p>{len(graph.nodes)} nodes on {len(graph.networks)} networks. Kinds: {legend}</p>
{svg}
<ul>{notes}</ul>
<script>{CHECK_SCRIPT}</script>
</body></html>
"""
