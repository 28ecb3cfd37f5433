"""A trace as one self-contained HTML page: a sequence diagram and a waterfall (no external resources).

The sequence diagram has one lifeline per container (in the order they took
part, the client first) and one arrow per step, from the container that did it
to the other side; DNS servers asked by the resolver get arrows of their own.
The waterfall puts every step on a shared time axis, with its detail and, in a
<details> element, the evidence it was read from. A small script checks, in the
browser, that every row and lifeline is inside the page and records the result
on <body data-layout="ok|..." data-steps="dns,tcp,..."> so tests can read it.
"""

from __future__ import annotations

import math
from html import escape

from lab.trace.model import FIREWALL_STEP, SERVER_STEP, Step, Trace

KIND_COLOURS = {
    "dns": "#b07aa1", "path": "#59a14f", FIREWALL_STEP: "#e15759", "tcp": "#4e79a7", "tls": "#76b7b2",
    "request": "#bab0ac", "lb": "#f28e2b", SERVER_STEP: "#edc948", "db": "#9c755f", "transfer": "#86bcb6",
}
# What each kind of step is, in plain words, for someone who has never seen one.
KIND_MEANINGS = {
    "dns": "DNS lookup: the client asks its ISP's resolver for the name's address. With an empty cache "
           "the resolver asks a root server, is referred to the TLD's server, then to the domain's own server.",
    "path": "Route: the packets cross routers: the home router (which hides the laptop behind its own "
            "address: NAT), the ISP's router and the site's firewall.",
    FIREWALL_STEP: "Firewall: the site's firewall compares each new connection with its rules in order; the "
                "first rule that matches decides (allow, deny or reject) and its counter goes up.",
    "tcp": "TCP connect: the three-way handshake (SYN, SYN-ACK, ACK) that opens a connection to the server.",
    "tls": "TLS handshake: both sides agree on a version and a cipher; the server shows its certificate and "
           "the client checks that a CA it trusts (the lab's own CA) issued it for this name.",
    "request": "Request: the client sends its HTTP request and waits for the answer. Everything on the server "
               "side (load balancer, application, database) happens during this wait.",
    "lb": "Load balancer: nginx picks one application server (round robin) and passes the request on; if "
          "that server does not answer, it retries on another.",
    SERVER_STEP: "Application: the server behind the load balancer (the shop's FastAPI app, one of several "
                 "identical replicas, or your own service) builds the answer.",
    "db": "Database: the time the application spent waiting for PostgreSQL.",
    "transfer": "Transfer: the body of the response travels back to the client.",
}
SOURCE_MEANINGS = {
    "observed": "read from the running system for this very request (packets, counters, logs with its trace id)",
    "derived": "computed from the lab's configuration, not seen on the wire",
}
CHILD_KINDS = {"dns": "dns-server", "path": "path-hop"}   # data-step of a child row
ON_THE_WAY = {"path"}   # kinds whose children lie between the step's node and its peer

LANE = 150          # horizontal distance between lifelines
LEFT = 80           # centre of the first lifeline
HEAD = 60           # height of the row of container boxes
ROW = 40            # vertical room for one arrow and its two lines of text
CHAR = 7.2          # average width of a 13px sans-serif character, to size the picture
SVG_TEXT_MAX = 90   # longer details are cut in the picture (the waterfall has them whole)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _cut(text: str, limit: int = SVG_TEXT_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _rows(trace: Trace) -> list[tuple[Step, Step | None]]:
    """Every step followed by its children, each with its parent (None for a top-level step)."""
    rows: list[tuple[Step, Step | None]] = []
    for step in trace.steps:
        rows.append((step, None))
        rows.extend((child, step) for child in step.children)
    return rows


def _data_step(step: Step, parent: Step | None) -> str:
    return step.kind if parent is None else CHILD_KINDS.get(parent.kind, f"{parent.kind}-part")


def _ends(step: Step, parent: Step | None, client: str) -> tuple[str, str]:
    """(from, to) of the arrow drawn for a step: requests go away from the client, the response toward it."""
    if parent is None:
        src, dst = step.node, step.peer or step.node
        if (step.kind == "transfer") == (dst == client):
            return src, dst
        return dst, src
    if parent.kind in ON_THE_WAY:
        # Routers crossed: each hop comes from the one before it (the first from the sender).
        index = parent.children.index(step)
        return (parent.node if index == 0 else parent.children[index - 1].node), step.node
    if step.peer is None or step.peer == step.node:
        # A server asked on the parent's behalf, recorded on the server: the far side asked it.
        return (parent.peer or parent.node), step.node
    # The side the child shares with its parent is the one asking (resolver -> root-1, lb -> app-1).
    for side in (parent.node, parent.peer):
        if side in (step.node, step.peer):
            return side, step.peer if side == step.node else step.node
    return step.node, step.peer


def _lifelines(trace: Trace) -> list[str]:
    """Containers in the order the journey meets them, the client first.

    This is trace.nodes, except that routers crossed on the way to a step's peer
    come before that peer, so the picture reads left to right like the route.
    """
    names = [trace.client]
    for step in trace.steps:
        order = [step.node, *(c.node for c in step.children), step.peer] if step.kind in ON_THE_WAY \
            else [step.node, step.peer, *(c.node for c in step.children)]
        order += [end for child in step.children for end in _ends(child, step, trace.client)]
        for name in order:
            if name and name not in names:
                names.append(name)
    return names


def _arrow(step: Step, parent: Step | None, xs: dict[str, float], y: float, client: str) -> tuple[str, float]:
    """The SVG of one arrow with its labels, and how far right its text reaches."""
    src, dst = _ends(step, parent, client)
    x1, x2 = xs[src], xs[dst]
    state = "ok" if step.ok else "failed"
    dashed = " dashed" if step.kind == "transfer" else ""
    label = f"{'✗ ' if not step.ok else ''}{step.title} · {_ms(step.duration_ms)}"
    detail = _cut(step.detail)
    parts = [f'<g class="arrow {state}" data-step="{escape(_data_step(step, parent))}">']
    if x1 == x2:   # a step inside one container: a box on its lifeline
        parts.append(f'<rect x="{x1 - 6:.0f}" y="{y + 4:.0f}" width="12" height="{ROW - 10}" class="act {state}"/>')
        tx = x1 + 14
    else:
        parts.append(f'<line x1="{x1:.0f}" y1="{y + 20:.0f}" x2="{x2 + (-8 if x2 > x1 else 8):.0f}" '
                     f'y2="{y + 20:.0f}" class="msg {state}{dashed}" marker-end="url(#head-{state})"/>')
        tx = min(x1, x2) + 10
    parts.append(f'<text x="{tx:.0f}" y="{y + 14:.0f}" class="label">{escape(label)}</text>')
    if detail:
        parts.append(f'<text x="{tx:.0f}" y="{y + 33:.0f}" class="detail {state}">{escape(detail)}'
                     f'<title>{escape(step.detail)}</title></text>')
    parts.append("</g>")
    reach = tx + CHAR * max(len(label), len(detail))
    return "".join(parts), reach


def _sequence(trace: Trace) -> tuple[str, float]:
    names = _lifelines(trace)
    xs = {name: LEFT + i * LANE for i, name in enumerate(names)}
    rows = _rows(trace)
    height = HEAD + ROW * len(rows) + 30
    arrows, reach = [], LEFT + LANE * len(names)
    for index, (step, parent) in enumerate(rows):
        svg, right = _arrow(step, parent, xs, HEAD + 10 + index * ROW, trace.client)
        arrows.append(svg)
        reach = max(reach, right)
    width = reach + 30
    lines = [f'<g class="lifeline" data-node="{escape(n)}"><line x1="{x:.0f}" y1="{HEAD - 14}" x2="{x:.0f}" '
             f'y2="{height - 10:.0f}" class="life"/><rect x="{x - 62:.0f}" y="8" width="124" height="{HEAD - 22}" '
             f'rx="6" class="{"client" if n == trace.client else "box"}"/><text x="{x:.0f}" y="{HEAD / 2 + 2:.0f}" '
             f'text-anchor="middle" font-weight="bold">{escape(n)}</text></g>' for n, x in xs.items()]
    markers = "".join(f'<marker id="head-{s}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
                      f'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="{s}"/></marker>'
                      for s in ("ok", "failed"))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="sequence diagram of the journey">'
           f'<defs>{markers}</defs>{"".join(lines)}{"".join(arrows)}</svg>')
    return svg, width


def _tick_step(span: float) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving five to ten ticks."""
    raw = max(span, 0.001) / 8
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _span(trace: Trace) -> float:
    ends = [s.start_ms + s.duration_ms for s, _ in _rows(trace)]
    return max([trace.total_ms, *ends, 0.001])


def _axis(span: float) -> str:
    step = _tick_step(span)
    count = int(span // step) + 1
    ticks = "".join(f'<span class="tick" style="left:{100 * i * step / span:.3f}%">{i * step:g} ms</span>'
                    for i in range(count) if i * step <= span)
    return f'<div class="row axis"><div></div><div></div><div class="track">{ticks}</div><div></div></div>'


def _row(step: Step, parent: Step | None, span: float) -> str:
    state = "ok" if step.ok else "failed"
    left = 100 * step.start_ms / span
    width = max(100 * step.duration_ms / span, 0.15)   # a 0 ms step still shows as a tick
    colour = KIND_COLOURS.get(step.kind if parent is None else parent.kind, "#999")
    child = " child" if parent else ""
    mark = "" if step.ok else '<b class="bad">✗ </b>'
    evidence = ""
    if step.evidence:
        lines = "\n".join(escape(line) for line in step.evidence)
        evidence = (f'<details><summary>evidence ({len(step.evidence)}): where this was read</summary>'
                    f'<pre>{lines}</pre></details>')
    known = escape(step.source)
    detail = (f'<div class="detail {state}"><span class="source {known}" title="{SOURCE_MEANINGS.get(step.source, "")}">'
              f'{known}</span> {escape(step.detail)}</div>')
    return (f'<div class="step{child} {state}" data-step="{escape(_data_step(step, parent))}" data-source="{known}">'
            f'<div class="row"><div class="title">{mark}{escape(step.title)}</div>'
            f'<div class="node">{escape(step.node)}</div>'
            f'<div class="track"><div class="bar" style="left:{left:.3f}%;width:{width:.3f}%;'
            f'background:{colour}"></div></div><div class="dur">{_ms(step.duration_ms)}</div></div>'
            f'<div class="more">{detail}{evidence}</div></div>')


def _waterfall(trace: Trace) -> str:
    span = _span(trace)
    rows = "".join(_row(step, parent, span) for step, parent in _rows(trace))
    return f'<div class="waterfall">{_axis(span)}{rows}</div>'


def _legend(trace: Trace) -> str:
    # Every kind is explained, so a trace that stopped early still shows what would have come next.
    items = []
    for kind, meaning in KIND_MEANINGS.items():
        reached = trace.step(kind) is not None
        note = "" if reached else ' <i class="unreached">(not reached in this trace)</i>'
        items.append(f'<li class="{"reached" if reached else "unreached"}"><span class="swatch" '
                     f'style="background:{KIND_COLOURS[kind]}"></span>{escape(meaning)}{note}</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def _header(trace: Trace) -> str:
    verdict = "OK" if trace.ok else "FAILED"
    status = "no answer" if trace.status is None else str(trace.status)
    facts = [("lab", trace.lab), ("client", trace.client), ("HTTP status", status), ("total", _ms(trace.total_ms))]
    if trace.trace_id:
        facts.append(("trace id (find it in the logs)", trace.trace_id))
    cells = "".join(f"<span><b>{escape(k)}</b> {escape(v)}</span>" for k, v in facts)
    return (f'<header class="{verdict.lower()}"><h1><span class="verdict">{verdict}</span> '
            f'{escape(trace.url)}</h1><p class="summary">{escape(trace.summary)}</p>'
            f'<p class="facts">{cells}</p></header>')


CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var page = document.documentElement, svg = document.querySelector('svg').getBoundingClientRect();
  var problems = [];
  function outside(r, box) {
    return r.width === 0 || r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 || r.bottom > box.bottom + 1;
  }
  var whole = {left: 0, top: 0, right: page.scrollWidth, bottom: page.scrollHeight};
  document.querySelectorAll('div.step').forEach(function (e, i) {
    if (outside(e.getBoundingClientRect(), whole)) problems.push('row ' + i + ' (' + e.dataset.step + ') outside the page');
  });
  document.querySelectorAll('g.lifeline, g.arrow').forEach(function (g, i) {
    if (outside(g.getBoundingClientRect(), svg)) problems.push((g.dataset.node || g.dataset.step + ' arrow ' + i) + ' outside the picture');
  });
  var kinds = [];
  document.querySelectorAll('div.step').forEach(function (e) {
    if (kinds.indexOf(e.dataset.step) < 0) kinds.push(e.dataset.step);
  });
  document.body.dataset.layout = problems.length ? problems.join('; ') : 'ok';
  document.body.dataset.steps = kinds.join(',');
});
"""

STYLE = """
body { font-family: sans-serif; margin: 16px 24px; color: #222; }
header { border-left: 10px solid; padding: 4px 16px; margin-bottom: 12px; }
header.ok { border-color: #2e7d32; background: #eef7ee; } header.failed { border-color: #c62828; background: #fdecec; }
.verdict { color: #fff; padding: 2px 10px; border-radius: 6px; font-size: 0.8em; }
.ok .verdict { background: #2e7d32; } .failed .verdict { background: #c62828; }
h1 { font-size: 1.4em; margin: 8px 0; word-break: break-all; } .summary { font-size: 1.1em; }
.facts span { margin-right: 22px; } h2 { margin: 22px 0 4px; font-size: 1.15em; } .hint { color: #555; margin: 0 0 8px; }
svg text { font-size: 13px; fill: #111; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .life { stroke: #bbb; stroke-width: 1.5; stroke-dasharray: 4 4; }
svg rect.box { fill: #e8eef6; stroke: #6b86a8; } svg rect.client { fill: #cfe0f5; stroke: #4e79a7; stroke-width: 2; }
svg .msg { stroke-width: 2; } svg .msg.ok { stroke: #333; } svg .msg.failed { stroke: #c62828; stroke-width: 3; }
svg .dashed { stroke-dasharray: 6 4; } svg path.ok { fill: #333; } svg path.failed { fill: #c62828; }
svg rect.act { fill: #ddd; stroke: #333; } svg rect.act.failed { fill: #f7c6c6; stroke: #c62828; }
svg text.detail { fill: #555; font-style: italic; } svg text.detail.failed { fill: #c62828; font-weight: bold; font-style: normal; }
.waterfall { max-width: 1400px; }
.row { display: grid; grid-template-columns: 340px 110px 1fr 80px; gap: 10px; align-items: center; }
.step { border-top: 1px solid #eee; padding: 3px 0; } .step.failed { background: #fdecec; }
.child .title { padding-left: 24px; color: #444; } .node { color: #555; font-family: monospace; }
.track { position: relative; height: 16px; background: #f6f6f6; } .bar { position: absolute; top: 2px; height: 12px; border-radius: 2px; }
.failed .bar { outline: 2px solid #c62828; } .dur { text-align: right; font-variant-numeric: tabular-nums; }
.axis .track { background: none; height: 18px; border-bottom: 1px solid #999; }
.tick { position: absolute; font-size: 11px; color: #555; border-left: 1px solid #999; padding-left: 2px; height: 16px; white-space: nowrap; }
.more { margin-left: 360px; font-size: 0.9em; }
.source { font-size: 0.8em; padding: 0 4px; border-radius: 3px; background: #e8f5e9; color: #2e7d32; }
.source.derived { background: #fff3e0; color: #e65100; } .detail { color: #444; } .detail.failed, .bad { color: #c62828; font-weight: bold; }
details summary { cursor: pointer; color: #335; } pre { background: #f4f4f4; padding: 6px; white-space: pre-wrap; margin: 2px 0; }
.legend { list-style: none; padding: 0; max-width: 1100px; } .legend li { margin: 4px 0; } .legend li.unreached { color: #888; }
.swatch { display: inline-block; width: 14px; height: 14px; margin-right: 8px; vertical-align: middle; border-radius: 3px; }
"""


def to_html(trace: Trace) -> str:
    svg, width = _sequence(trace)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab trace: {escape(trace.url)}</title>
<style>{STYLE} body {{ min-width: {width:.0f}px; }}</style></head>
<body>
{_header(trace)}
<h2>Who talked to whom</h2>
<p class="hint">One vertical line per container, the client first; one arrow per step, top to bottom in the
order they happened, with what it took. A red arrow is where the journey failed.</p>
{svg}
<h2>Where the time went</h2>
<p class="hint">Each bar starts when its step started and is as long as it took, on one time axis.
Server-side steps (load balancer, application, database) happen while the client waits for its request.
Open "evidence" to see where each fact was read.</p>
{_waterfall(trace)}
<h2>What the steps mean</h2>
{_legend(trace)}
<script>{CHECK_SCRIPT}</script>
</body></html>
"""
