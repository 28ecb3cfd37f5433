"""A page load as a waterfall picture (SVG): one row per request, its phases coloured.

Pure: a Visit (lab.browse.har) in, SVG text out, for `lab browse --html`. Each row is the
request's path, then a bar from when it began, one segment per HAR phase; a request answered
by the browser's cache has no phases and is marked with what answered it.
"""

from __future__ import annotations

from html import escape

from lab.browse.har import MEMORY, DISK, NETWORK, PHASES, Visit

COLOURS = {"blocked": "#bab0ac", "dns": "#59a14f", "connect": "#f28e2b", "ssl": "#b07aa1",
           "send": "#4e79a7", "wait": "#76b7b2", "receive": "#edc948"}
ROW, LABEL_W, BAR_W, TOP = 22, 230, 520, 28
MARK = {MEMORY: "memory cache", DISK: "disk cache"}


def _label(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span_ms(visit: Visit) -> float:
    ends = [e.started_ms + (e.total_ms or 0.0) for e in visit.entries]
    return max(ends + [1.0])


def render_waterfall(visit: Visit) -> str:
    """SVG of the visit's requests; x: milliseconds since the page's own request began."""
    scale = BAR_W / _span_ms(visit)
    height = TOP + ROW * len(visit.entries) + 34
    width = LABEL_W + BAR_W + 130
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<text x="4" y="16" font-weight="bold">load {visit.number}: {escape(visit.url)}</text>']
    for row, entry in enumerate(visit.entries):
        y = TOP + row * ROW
        x = LABEL_W + entry.started_ms * scale
        status = entry.error or (str(entry.status) if entry.status is not None else "?")
        parts.append(f'<g class="request" data-path="{escape(entry.path)}" data-cache="{escape(entry.cache)}">')
        parts.append(f'<text x="4" y="{y + 15}">{escape(_label(entry.path))} {escape(status)}</text>')
        if entry.cache in MARK:
            parts.append(f'<rect class="cache-hit" x="{x:.1f}" y="{y + 4}" width="6" height="14" fill="#9c9c9c"/>'
                         f'<text x="{x + 10:.1f}" y="{y + 15}" fill="#555">{MARK[entry.cache]}</text>')
        else:
            for phase in PHASES:
                width_px = entry.phases.get(phase, 0.0) * scale
                if width_px > 0:
                    parts.append(f'<rect class="phase {phase}" x="{x:.1f}" y="{y + 4}" width="{width_px:.1f}" '
                                 f'height="14" fill="{COLOURS[phase]}"><title>{phase} '
                                 f'{entry.phases[phase]:.1f} ms</title></rect>')
                    x += width_px
            note = f"{entry.total_ms:.1f} ms" if entry.total_ms is not None else ""
            if entry.cache != NETWORK:
                note += f" {entry.cache}"
            parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}" fill="#333">{escape(note.strip())}</text>')
        parts.append("</g>")
    legend_y = TOP + ROW * len(visit.entries) + 20
    x = 4
    for phase in PHASES:
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS[phase]}"/>'
                     f'<text x="{x + 16}" y="{legend_y}">{phase}</text>')
        x += 90
    parts.append("</svg>")
    return "\n".join(parts)
