"""`lab browse --html`: one self-contained page: per load, the waterfall (SVG) above the lab's
evidence for each request in order, then the page as the browser rendered it (PNG inline).

Pure: a BrowseResult in, HTML text out; no file, script or font is fetched from anywhere.
"""

from __future__ import annotations

import base64
from html import escape

from lab.browse.evidence import OBSERVED, reached_the_lab
from lab.browse.model import BrowseResult
from lab.browse.render import claim_text, failures, phases_text, title
from lab.browse.waterfall import render_waterfall

STYLE = """
body { font-family: sans-serif; margin: 24px; max-width: 1100px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; }
.waterfall { display: block; max-width: 100%; height: auto; margin: 8px 0 16px; }
ol.requests { padding-left: 24px; }
ol.requests > li { margin: 0 0 12px; }
.request-title { font-family: monospace; font-weight: bold; }
.request-title.failed { color: #b00020; }
.phases { font-family: monospace; color: #555; }
ul.claims { margin: 4px 0 0; padding-left: 18px; }
.derived { font-style: italic; color: #555; }
.name { margin: 4px 0; }
.failures { color: #b00020; }
table.journey { border-collapse: collapse; margin: 12px 0 4px; font-size: 13px; }
table.journey caption { text-align: left; font-weight: bold; padding-bottom: 4px; }
table.journey td, table.journey th { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
table.journey tr.derived { font-style: italic; color: #555; }
table.journey tr.broken { color: #b00020; }
.journey-summary { font-weight: bold; }
figure { margin: 16px 0; } figure img { display: block; max-width: 100%; border: 1px solid #ccc; }
"""


def _claims(claims) -> str:
    items = "".join(f'<li class="{"observed" if c.source == OBSERVED else "derived"}">{escape(claim_text(c))}</li>'
                    for c in claims)
    return f'<ul class="claims">{items}</ul>' if items else ""


def _visit(result: BrowseResult, visit) -> str:
    parts = [f'<section class="visit" id="load-{visit.number}"><h2>load {visit.number}: {escape(visit.url)}</h2>']
    name = next((n for n in result.names if n.visit == visit.number), None)
    for claim in name.claims if name else []:
        parts.append(f'<p class="name">name: {escape(claim_text(claim))}</p>')
    parts.append(render_waterfall(visit))
    parts.append('<ol class="requests">')
    for number, entry in enumerate(visit.entries, 1):
        failed = entry.error is not None or (entry.status or 0) >= 400
        found = result.evidence.get(entry.trace_id or "") if reached_the_lab(entry) else None
        parts.append(f'<li class="request"><div class="request-title{" failed" if failed else ""}">'
                     f'{escape(title(None, entry))}</div><div class="phases">{escape(phases_text(entry))}</div>')
        if found is not None:
            parts.append(f'<div class="phases">trace {escape(found.trace_id)}</div>{_claims(found.claims)}')
        parts.append("</li>")
    parts.append("</ol>")
    for journey in (j for j in result.journeys if j.visit == visit.number):
        parts.append(_journey(journey))
    parts.append("</section>")
    return "".join(parts)


def _journey(journey) -> str:
    """The load's journey as a table: step, node(s), what happened, evidence, time, observed/derived."""
    rows = []
    for number, step in enumerate(journey.steps, 1):
        kind = "broken" if step.broken else ("observed" if step.source == OBSERVED else "derived")
        when = f"{step.ms:.3f} ms" if step.ms is not None else ""
        rows.append(f'<tr class="{kind}"><td>{number}</td><td>{escape(step.name)}</td>'
                    f'<td>{escape(", ".join(step.nodes))}</td><td>{escape(step.said)}</td>'
                    f'<td>{escape(step.evidence)}</td><td>{when}</td><td>{escape(step.source)}</td></tr>')
    return (f'<table class="journey" id="journey-{journey.visit}"><caption>the journey of load {journey.visit}'
            '</caption><tr><th>#</th><th>step</th><th>node(s)</th><th>what happened</th><th>evidence</th>'
            f'<th>time</th><th>known</th></tr>{"".join(rows)}</table>'
            f'<p class="journey-summary">{escape(journey.summary)}</p>')


def to_html(result: BrowseResult) -> str:
    body = [f"<h1>lab browse {escape(result.url)} from {escape(result.client)} (lab {escape(result.lab)})</h1>"]
    if result.error:
        body.append(f'<p class="failures">the browser could not load the page: {escape(result.error)}</p>')
    body.extend(_visit(result, visit) for visit in result.visits)
    problems = failures(result)
    if problems:
        body.append('<section class="failures"><h2>failed requests</h2><ul>'
                    + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul></section>")
    if result.screenshot:
        data = base64.b64encode(result.screenshot).decode()
        body.append(f'<figure class="screenshot"><img alt="the page as the browser rendered it" '
                    f'src="data:image/png;base64,{data}"><figcaption>the page as Chromium rendered it '
                    f'(after load {result.visits[-1].number if result.visits else 1})</figcaption></figure>')
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>lab browse {escape(result.url)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
