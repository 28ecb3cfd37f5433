"""Which nodes report their own readiness, and reading the engine's start time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess

import pytest

from lab.backends.docker.ready_report import (READY_PROBE_FILE, probe_line, ready_files, reports_ready,
                                              started_at)
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
    assert line.startswith("test -e /run/lab/init-done") and line.endswith("\n")
    web = next(c for c in plan.containers if c.kind == "web")
    # a `sh -c SCRIPT` probe is its script; any other command, its words quoted for the shell
    assert ready_files(web)[READY_PROBE_FILE].startswith("lab-listening tcp 80 && curl -fsS -o /dev/null")
    words = dataclasses.replace(web, probe=Probe(("curl", "-o", "/dev/null", "http://127.0.0.1/a b")))
    assert ready_files(words)[READY_PROBE_FILE] == "curl -o /dev/null 'http://127.0.0.1/a b'\n"
    own_image = dataclasses.replace(client, image="someone/else:1")
    assert not reports_ready(own_image) and ready_files(own_image) == {}
    no_probe = dataclasses.replace(client, probe=Probe(()))
    assert not reports_ready(no_probe)


@pytest.mark.parametrize("command, status, output", [
    (("sh", "-c", "printf '%s|' \"$0\" >/dev/null; exit 3"), 3, ""),
    (("sh", "-c", "test -e /nonexistent-lab-file || { printf 'a b'; exit 4; }"), 4, "a b"),
    (("test", "-e", "/nonexistent-lab-file"), 1, ""),
    (("printf", "%s|%s", "two words", "it's"), 0, "two words|it's"),
    (("sh", "-c", "echo one", "extra"), 0, "one\n"),   # not the plain form: kept as a command
])
def test_the_probe_line_evaluated_as_lab_ready_report_does_acts_as_the_command(tmp_path, command, status, output):
    """lab-ready-report reads the line with builtins and runs `( eval "$probe" )` in the
    image's POSIX shell: the same exit status and output as the command itself."""
    probe = tmp_path / "ready-probe"
    probe.write_text(probe_line(command) + "\n")
    script = ('probe=""; while IFS= read -r line || [ -n "$line" ]; do probe="$probe$line\n"; done < "$1"; '
              '( eval "$probe" )')
    evaluated = subprocess.run(["sh", "-c", script, "report", str(probe)], capture_output=True, text=True)
    direct = subprocess.run(list(command), capture_output=True, text=True)
    assert (evaluated.returncode, evaluated.stdout) == (direct.returncode, direct.stdout) == (status, output)
