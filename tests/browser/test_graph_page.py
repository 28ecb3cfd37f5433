"""The topology picture in a real browser (headless Chromium at 1400x900), judged from the
DOM's own geometry: every node and network is drawn, no wire crosses a box or label that is
not its own, each wire ends on its own network's bus, and the whole lab fits the window."""

import json
import re
from html import unescape

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.topology import load_topology

# Injected by the test (the page does not judge itself): reads each element's box as the
# browser laid it out (getBoundingClientRect; a wire's ends through getScreenCTM) and writes
# what it found on <body data-geometry="{...}">.
GEOMETRY_SCRIPT = """
<script>
window.addEventListener('load', function () {
  function rect(r) { return {l: r.left, t: r.top, r: r.right, b: r.bottom}; }
  function ends(line) {
    var m = line.getScreenCTM(), a = line.ownerSVGElement.createSVGPoint(), b = line.ownerSVGElement.createSVGPoint();
    a.x = line.x1.baseVal.value; a.y = line.y1.baseVal.value; b.x = line.x2.baseVal.value; b.y = line.y2.baseVal.value;
    a = a.matrixTransform(m); b = b.matrixTransform(m);
    return [a.x, a.y, b.x, b.y];
  }
  var found = {
    window: [window.innerWidth, window.innerHeight],
    boxes: Array.from(document.querySelectorAll('g.node')).map(function (g) {
      return {node: g.dataset.node, r: rect(g.querySelector('rect').getBoundingClientRect()),
              texts: Array.from(g.querySelectorAll('text')).map(function (t) { return rect(t.getBoundingClientRect()); })}; }),
    labels: Array.from(document.querySelectorAll('g.network text, g.region text')).map(function (t) {
      return {owner: t.parentNode.dataset.network || t.parentNode.dataset.system, r: rect(t.getBoundingClientRect())}; }),
    buses: Array.from(document.querySelectorAll('g.network')).map(function (g) {
      return {network: g.dataset.network, ends: ends(g.querySelector('line.bus'))}; }),
    wires: Array.from(document.querySelectorAll('line.link')).map(function (l) {
      return {node: l.dataset.node, network: l.dataset.network, ends: ends(l)}; })
  };
  document.body.dataset.geometry = JSON.stringify(found);
  // then use it as a person would: wheel up over the middle, drag, press "fit"
  var svg = document.getElementById('picture'), r = svg.getBoundingClientRect(), views = [svg.getAttribute('viewBox')];
  var x = r.left + r.width / 2, y = r.top + r.height / 2;
  svg.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: x, clientY: y, bubbles: true, cancelable: true}));
  views.push(svg.getAttribute('viewBox'));
  svg.dispatchEvent(new PointerEvent('pointerdown', {clientX: x, clientY: y, pointerId: 1, bubbles: true}));
  svg.dispatchEvent(new PointerEvent('pointermove', {clientX: x + 100, clientY: y + 50, pointerId: 1, bubbles: true}));
  svg.dispatchEvent(new PointerEvent('pointerup', {clientX: x + 100, clientY: y + 50, pointerId: 1, bubbles: true}));
  views.push(svg.getAttribute('viewBox'));
  document.getElementById('fit').click();
  views.push(svg.getAttribute('viewBox'));
  document.body.dataset.views = JSON.stringify(views);
});
</script>
"""


def crosses(ends, r, inset=0.5) -> bool:
    """Whether a segment enters a rectangle's inside (Liang-Barsky; touching is not crossing)."""
    x1, y1, x2, y2 = ends
    left, right, top, bottom = r["l"] + inset, r["r"] - inset, r["t"] + inset, r["b"] - inset
    low, high = 0.0, 1.0
    for p, q in ((x1 - x2, x1 - left), (x2 - x1, right - x1), (y1 - y2, y1 - top), (y2 - y1, bottom - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        low, high = (max(low, t), high) if p < 0 else (low, min(high, t))
        if low > high:
            return False
    return True


def geometry(root, tmp_path, render_page, name: str) -> dict:
    page = tmp_path / f"{name}.html"
    result = CliRunner().invoke(main, ["graph", str(root / "topology" / f"{name}.yaml"), "--format", "html",
                                       "-o", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "<script src" not in text and "http" not in text.replace(
        "http://www.w3.org/2000/svg", "")  # self-contained: no external resources
    page.write_text(text.replace("</body>", GEOMETRY_SCRIPT + "</body>"))
    shown = render_page(page, 1400, 900)
    found = re.search(r'data-geometry="([^"]*)"', shown.dom)
    assert found, shown.dom[:500]
    data = json.loads(unescape(found.group(1)))
    data["views"] = json.loads(unescape(re.search(r'data-views="([^"]*)"', shown.dom).group(1)))
    data["screenshot"] = shown.screenshot
    return data


@pytest.mark.parametrize("name", ["default", "internet"])
def test_graph_page_reads_right_at_1400_by_900(root, tmp_path, render_page, name):
    lab = load_topology(root / "topology" / f"{name}.yaml")
    data = geometry(root, tmp_path, render_page, name)
    width, height = data["window"]
    assert {b["node"] for b in data["boxes"]} == set(lab.instance_names())
    assert {b["network"] for b in data["buses"]} == set(lab.spec.networks)
    assert len(data["wires"]) == sum(len(i.addresses) for i in lab.instances)
    for box in data["boxes"]:       # the whole lab fits the window, each box's text fits the box
        r = box["r"]
        assert 0 <= r["l"] < r["r"] <= width and 0 <= r["t"] < r["b"] <= height, box
        assert all(r["l"] <= t["l"] and t["r"] <= r["r"] and r["t"] <= t["t"] and t["b"] <= r["b"]
                   for t in box["texts"]), box
    for i, a in enumerate(data["boxes"]):
        for b in data["boxes"][i + 1:]:
            ra, rb = a["r"], b["r"]
            assert not (ra["l"] < rb["r"] and rb["l"] < ra["r"] and ra["t"] < rb["b"] and rb["t"] < ra["b"]), (a, b)
    buses = {b["network"]: b["ends"] for b in data["buses"]}
    for wire in data["wires"]:
        crossed = [b["node"] for b in data["boxes"] if b["node"] != wire["node"] and crosses(wire["ends"], b["r"])]
        crossed += [f"label {t['owner']}" for t in data["labels"] if crosses(wire["ends"], t["r"])]
        assert not crossed, f"{wire['node']}'s wire to {wire['network']} crosses {crossed}"
        x1, y1, x2, _ = buses[wire["network"]]       # it ends on its own network's bus
        assert abs(wire["ends"][3] - y1) < 0.5 and x1 <= wire["ends"][2] <= x2, wire
    assert data["screenshot"].stat().st_size > 10_000  # a real picture, not a blank page
    the_wheel_zooms_around_the_pointer_dragging_pans_and_fit_shows_it_all(data["views"])


def the_wheel_zooms_around_the_pointer_dragging_pans_and_fit_shows_it_all(views: list[str]) -> None:
    home, zoomed, panned, fitted = (tuple(map(float, v.split())) for v in views)
    assert zoomed[2] < home[2] and zoomed[3] < home[3]                         # closer: a smaller window on it
    assert abs(zoomed[2] / home[2] - zoomed[3] / home[3]) < 1e-6               # same shape
    assert home[0] < zoomed[0] and home[1] < zoomed[1]                         # around the middle, not the corner
    assert panned[2:] == zoomed[2:] and panned[0] < zoomed[0] and panned[1] < zoomed[1]   # dragged right, down
    assert fitted == home


def test_minimal_graph_page_shows_every_node(root, tmp_path, render_page):
    lab = load_topology(root / "topology" / "minimal.yaml")
    data = geometry(root, tmp_path, render_page, "minimal")
    assert {b["node"] for b in data["boxes"]} == set(lab.instance_names())
