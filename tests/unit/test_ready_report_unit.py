"""Which nodes report their own readiness, and reading the engine's start time."""

from __future__ import annotations

import dataclasses
import datetime as dt

from lab.backends.docker.ready_report import READY_PROBE_FILE, ready_files, reports_ready, started_at
from lab.plan import make_plan
from lab.plan.model import LabState, Probe
from lab.topology import load_topology


class _Container:
    def __init__(self, started: str):
        self.attrs = {"State": {"StartedAt": started}}


def test_started_at_keeps_the_engines_fraction_of_a_second():
    expected = dt.datetime(2026, 11, 29, 16, 5, 33, 123456, tzinfo=dt.timezone.utc).timestamp()
    assert started_at(_Container("2026-11-29T16:05:33.123456789Z")) == expected
    assert started_at(_Container("2026-11-29T16:05:33.5Z")) == expected - 0.123456 + 0.5
    assert started_at(_Container("2026-11-29T16:05:33Z")) == expected - 0.123456


def test_lab_images_report_and_the_probe_is_one_shell_line(root):
    plan = make_plan(load_topology(root / "topology" / "default.yaml"), LabState())
    client = next(c for c in plan.containers if c.kind == "client")
    assert reports_ready(client)
    line = ready_files(client)[READY_PROBE_FILE]
    assert line.startswith("sh -c 'test -e /run/lab/init-done") and line.endswith("\n")
    own_image = dataclasses.replace(client, image="someone/else:1")
    assert not reports_ready(own_image) and ready_files(own_image) == {}
    no_probe = dataclasses.replace(client, probe=Probe(()))
    assert not reports_ready(no_probe)
