"""The topology as one self-contained HTML page with an SVG picture (no external resources).

The geometry is lab/graph/layout.py's (networks as horizontal buses, boxes wired to them by
vertical lines that never cross another box, autonomous systems as shaded strips); this
module only draws it. The picture fills the window whatever its size (the SVG's viewBox,
scaled to fit); the mouse wheel zooms around the pointer, dragging pans, and "fit" shows the
whole lab again.
"""

from __future__ import annotations

from html import escape

from lab.graph.layout import LINE, Box, Bus, Picture, Region, Wire, lay_out
from lab.graph.model import Graph, kind_colours

REGION_FILLS = ("#e8f0fb", "#fbf1e3", "#eaf6ea", "#f6e9f3", "#f1f1e1", "#e6f4f4")


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _region(region: Region, fill: str) -> str:
    r = region.rect
    return (f'<g class="region" data-system="{escape(region.system)}"><title>{escape(region.description)}</title>'
            f'<rect x="{_f(r.x)}" y="{_f(r.y)}" width="{_f(r.w)}" height="{_f(r.h)}" rx="10" fill="{fill}"/>'
            f'<text x="{_f(region.label.x)}" y="{_f(region.label.y + 13)}" class="region-label">'
            f'{escape(region.title)}</text></g>')


def _bus(bus: Bus) -> str:
    line, label = bus.line, bus.label
    texts = [f'<text x="{_f(label.x)}" y="{_f(line.y1 - 5)}" font-weight="bold">{escape(bus.lines[0])}</text>']
    impair = ' class="impair"'
    texts += [f'<text x="{_f(label.x)}" y="{_f(line.y1 + 13 + LINE * i)}"{impair if i else ""}>'
              f'{escape(text)}</text>' for i, text in enumerate(bus.lines[1:])]
    return (f'<g class="network" data-network="{escape(bus.network.name)}">'
            f'<line x1="{_f(line.x1)}" y1="{_f(line.y1)}" x2="{_f(line.x2)}" y2="{_f(line.y2)}" class="bus"/>'
            + "".join(texts) + "</g>")


def _wire(wire: Wire) -> str:
    s = wire.line
    return (f'<line x1="{_f(s.x1)}" y1="{_f(s.y1)}" x2="{_f(s.x2)}" y2="{_f(s.y2)}" class="link" '
            f'data-node="{escape(wire.node)}" data-network="{escape(wire.network)}"><title>'
            f'{escape(wire.node)} on {escape(wire.network)}: {escape(wire.address)}</title></line>'
            f'<circle cx="{_f(s.x2)}" cy="{_f(s.y2)}" r="4" class="junction"/>')


def _box(box: Box, colours: dict[str, str]) -> str:
    r, node = box.rect, box.node
    parts = [f'<g class="node" data-node="{escape(node.name)}" data-kind="{escape(node.kind)}">',
             f'<rect x="{_f(r.x)}" y="{_f(r.y)}" width="{_f(r.w)}" height="{_f(r.h)}" rx="8" '
             f'fill="{colours.get(node.kind, "#cccccc")}"/>']
    x = _f(r.x + r.w / 2)
    parts.append(f'<text x="{x}" y="{_f(r.y + 16)}" text-anchor="middle"><tspan font-weight="bold">'
                 f'{escape(node.name)}</tspan> <tspan font-style="italic">{escape(node.kind)}</tspan></text>')
    for index, line in enumerate(box.lines[1:], start=1):
        parts.append(f'<text x="{x}" y="{_f(r.y + 16 + index * LINE)}" text-anchor="middle">{escape(line)}</text>')
    parts.append("</g>")
    return "".join(parts)


def to_svg(graph: Graph, picture: Picture | None = None) -> str:
    picture = picture or lay_out(graph)
    colours = kind_colours()
    parts = [f'<svg id="picture" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_f(picture.width)} '
             f'{_f(picture.height)}" preserveAspectRatio="xMidYMid meet" role="img" '
             f'aria-label="topology of lab {escape(graph.lab)}">']
    parts += [_region(region, REGION_FILLS[i % len(REGION_FILLS)]) for i, region in enumerate(picture.regions)]
    parts += [_bus(bus) for bus in picture.buses]
    parts += [_wire(wire) for wire in picture.wires]
    parts += [_box(box, colours) for box in picture.boxes]
    parts.append("</svg>")
    return "\n".join(parts)


# Zoom around the pointer with the wheel, pan by dragging, "fit" to see everything again:
# all by moving the viewBox, so text stays sharp at any zoom.
VIEW_SCRIPT = """
(function () {
  var svg = document.getElementById('picture');
  var home = svg.getAttribute('viewBox').split(' ').map(Number), box = home.slice();
  function show() { svg.setAttribute('viewBox', box.join(' ')); }
  function at(event) {
    var p = svg.createSVGPoint(); p.x = event.clientX; p.y = event.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(factor, centre) {
    box = [centre.x - (centre.x - box[0]) * factor, centre.y - (centre.y - box[1]) * factor,
           box[2] * factor, box[3] * factor];
    show();
  }
  svg.addEventListener('wheel', function (event) {
    event.preventDefault();
    zoom(Math.exp(event.deltaY * 0.0015), at(event));
  }, {passive: false});
  var grab = null;
  svg.addEventListener('pointerdown', function (event) {
    grab = at(event);
    try { svg.setPointerCapture(event.pointerId); } catch (e) { /* a pointer the browser does not track */ }
  });
  svg.addEventListener('pointermove', function (event) {
    if (!grab) return;
    var now = at(event);
    box[0] -= now.x - grab.x; box[1] -= now.y - grab.y; show();
  });
  svg.addEventListener('pointerup', function () { grab = null; });
  function middle() { return {x: box[0] + box[2] / 2, y: box[1] + box[3] / 2}; }
  document.getElementById('fit').onclick = function () { box = home.slice(); show(); };
  document.getElementById('zoom-in').onclick = function () { zoom(1 / 1.25, middle()); };
  document.getElementById('zoom-out').onclick = function () { zoom(1.25, middle()); };
})();
"""

STYLE = """
html, body { height: 100%; margin: 0; }
body { font-family: sans-serif; color: #222; display: flex; flex-direction: column; }
header { padding: 6px 12px; border-bottom: 1px solid #ddd; }
header h1 { font-size: 18px; margin: 0 12px 0 0; display: inline; }
header p { margin: 4px 0 0; font-size: 13px; }
button { font-size: 13px; margin-left: 4px; }
#view { flex: 1; min-height: 0; }
#picture { width: 100%; height: 100%; display: block; cursor: grab; user-select: none; }
svg text { font-size: 12px; fill: #111; }
.region-label { font-weight: bold; fill: #345; }
.bus { stroke: #777; stroke-width: 5; stroke-linecap: round; }
.link { stroke: #444; stroke-width: 2; }
.junction { fill: #444; }
.impair { fill: #a33; }
.kind { display: inline-block; padding: 1px 7px; margin: 1px; border-radius: 6px; font-size: 12px; }
"""


def to_html(graph: Graph) -> str:
    legend = "".join(f'<span class="kind" style="background:{colour}">{escape(kind)}</span>'
                     for kind, colour in kind_colours().items())
    systems = len({network.system for network in graph.networks if network.system})
    summary = f"{len(graph.nodes)} nodes on {len(graph.networks)} networks" + (
        f" in {systems} autonomous systems" if systems else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab {escape(graph.lab)}: topology</title>
<style>{STYLE}</style></head>
<body>
<header><h1>lab {escape(graph.lab)}</h1>{escape(summary)}.
<button id="fit" title="show the whole lab">fit</button><button id="zoom-in" title="zoom in">+</button><button
 id="zoom-out" title="zoom out">&minus;</button> <small>wheel: zoom, drag: pan; a dot is where a wire joins its network</small>
<p>Kinds: {legend}</p></header>
<div id="view">
{to_svg(graph)}
</div>
<script>{VIEW_SCRIPT}</script>
</body></html>
"""
