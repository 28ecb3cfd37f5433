"""`lab browse --html` renders in a real browser: both loads' waterfalls, every request, the
screenshot decoded, and nothing drawn over anything else (bounding boxes measured in the page)."""

from __future__ import annotations

import json
import re

from lab.browse.report import to_html
from tests.unit.test_browse_evidence import FIXTURES, PageRecording, interpret, load_topology

# Run in the page after it loaded: every block's box against every other's, and in each
# waterfall row the label against the bars; the result lands on <body> for --dump-dom.
MEASURE = """<script>
window.addEventListener("load", () => {
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const name = (e) => e.tagName + "." + (e.getAttribute("class") || "") + ":" + (e.textContent || "").slice(0, 30);
  const bad = [];
  const blocks = [...document.querySelectorAll("h1, h2, p.name, svg.waterfall, li.request, figure, section.failures ul")];
  blocks.forEach((a, i) => blocks.slice(i + 1).forEach((b) => {
    if (hit(a.getBoundingClientRect(), b.getBoundingClientRect())) bad.push(name(a) + " / " + name(b));
  }));
  const rows = [...document.querySelectorAll("svg.waterfall g.request")];
  rows.forEach((g) => {
    const label = g.querySelector("text").getBoundingClientRect();
    g.querySelectorAll("rect").forEach((r) => { if (hit(label, r.getBoundingClientRect())) bad.push("label/bar " + g.dataset.path); });
  });
  rows.forEach((a, i) => rows.slice(i + 1).forEach((b) => {
    if (hit(a.getBoundingClientRect(), b.getBoundingClientRect())) bad.push("row/row " + a.dataset.path + " " + b.dataset.path);
  }));
  const img = document.querySelector("figure.screenshot img");
  document.body.dataset.measured = JSON.stringify({overlaps: bad, waterfalls: document.querySelectorAll("svg.waterfall").length,
    rows: rows.length, requests: document.querySelectorAll("li.request").length,
    screenshot: img ? img.naturalWidth : 0});
});
</script>"""


def test_the_browse_report_shows_waterfalls_evidence_and_screenshot_without_overlaps(tmp_path, render_page):
    result = interpret(PageRecording(**json.loads((FIXTURES / "shop-reload.json").read_text())),
                       load_topology(FIXTURES / "topology.yaml"))
    page = tmp_path / "browse.html"
    page.write_text(to_html(result).replace("</body>", MEASURE + "</body>"))
    for width in (1400, 800):   # a wide window and a narrow one
        shown = render_page(page, width=width, height=900)
        found = re.search(r'data-measured="([^"]*)"', shown.dom)
        assert found, shown.dom[:500]
        measured = json.loads(found.group(1).replace("&quot;", '"'))
        requests = sum(len(v.entries) for v in result.visits)
        assert measured["waterfalls"] == 2 and measured["rows"] == requests and measured["requests"] == requests
        assert measured["screenshot"] > 100, "the screenshot did not decode"
        assert measured["overlaps"] == [], measured["overlaps"]
        assert shown.screenshot.stat().st_size > 10_000
