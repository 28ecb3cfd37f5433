"""The waterfall picture of a page load, from the real Chromium recording (test_browse_har.py)."""

from __future__ import annotations

import re
from pathlib import Path

from lab.browse.har import parse_events
from lab.browse.waterfall import ROW, render_waterfall

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "devtools" / "loopback-reload.jsonl"


def _visits():
    return parse_events(RECORDING.read_text().splitlines())


def test_one_row_per_request_in_separate_bands():
    for visit in _visits():
        svg = render_waterfall(visit)
        rows = re.findall(r'<g class="request" data-path="([^"]+)"', svg)
        assert rows == [e.path for e in visit.entries]
        label_y = [float(y) for y in re.findall(r'<text x="4" y="([\d.]+)">', svg)]
        assert all(b - a == ROW for a, b in zip(label_y, label_y[1:]))   # no two rows overlap


def test_phases_are_drawn_in_order_and_end_where_the_request_ended():
    cold = _visits()[0]
    svg = render_waterfall(cold)
    first = svg.split('<g class="request"')[1]
    phases = re.findall(r'class="phase (\w+)" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', first)
    assert [p for p, _, _ in phases] == [p for p in ("blocked", "send", "wait", "receive")
                                         if cold.entries[0].phases[p] > 0]
    for (_, x1, w1), (_, x2, _) in zip(phases, phases[1:]):
        assert abs(float(x1) + float(w1) - float(x2)) < 0.11   # each begins where the last ended


def test_cache_hits_are_marked_and_have_no_phases():
    reload = _visits()[1]
    svg = render_waterfall(reload)
    hits = [e.path for e in reload.entries if e.cache == "memory cache"]
    assert len(hits) == 3 and svg.count('class="cache-hit"') == 3 and svg.count(">memory cache<") == 3
    for path in hits:
        row = svg.split(f'data-path="{path}"')[1].split("</g>")[0]
        assert 'class="phase' not in row
