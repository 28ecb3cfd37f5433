"""The trace report renders in a real browser with every step and every container on the page."""

import re

import pytest

from lab.trace.html import to_html
from tests.unit.test_trace_html import TRACES


@pytest.mark.parametrize("name", TRACES)
def test_trace_page_shows_every_step(tmp_path, render_page, name):
    trace = TRACES[name]()
    page = tmp_path / f"trace-{name}.html"
    page.write_text(to_html(trace))
    shown = render_page(page)
    layout = re.search(r'data-layout="([^"]*)"', shown.dom)
    assert layout and layout.group(1) == "ok", layout.group(1) if layout else shown.dom[:500]
    steps = re.search(r'data-steps="([^"]*)"', shown.dom).group(1).split(",")
    assert [s.kind for s in trace.steps] == [k for k in steps if k in {s.kind for s in trace.steps}]
    if trace.step("dns").children:
        assert "dns-server" in steps
    for node in trace.nodes:
        assert f'data-node="{node}"' in shown.dom
    assert shown.screenshot.stat().st_size > 10_000  # a real picture, not a blank page
