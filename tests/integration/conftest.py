"""Integration tests run against a real Docker engine.

Where no engine answers they are skipped with the reason, except in CI
(CI=true), where a missing engine is a failure: a green run must mean the
containers really ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from lab.errors import LabError
from lab.plan.model import LABEL_LAB
from lab.plan import make_plan
from lab.backends.docker import apply
from lab.backends.docker.backend import DockerBackend
from lab.backends.docker.engine import connect
from lab.backends.docker.images import ensure_images
from lab.state import ensure_lab_state
from lab.topology import load_text
from lab.topology.model import KINDS

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine():
    try:
        client = connect(timeout=300)
    except LabError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine: {error}")
        pytest.skip(f"no Docker engine: {error}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(engine):
    """Every kind's image, built once per session (cold: a few minutes; warm: instant)."""
    return ensure_images(engine, KINDS)


SHIFT = int(os.environ.get("LAB_TEST_SUBNET_SHIFT", "0"))


def shift_subnets(text: str) -> str:
    """Move the lab's subnets by 40*SHIFT in the third octet (LAB_TEST_SUBNET_SHIFT=0..3), and
    its IPv6 prefixes (the shipped topologies' fd6c:6162::/32) to fd6c:6162+SHIFT::/32, so
    several test runs can share one engine without overlapping networks."""
    if not SHIFT:
        return text
    pattern = re.compile(r"\b(100\.64|198\.18|198\.19)\.(\d+)\.")
    text = pattern.sub(lambda m: f"{m.group(1)}.{_shifted_octet(int(m.group(2)))}.", text)
    return re.sub(r"\bfd6c:6162:", f"fd6c:{0x6162 + SHIFT:x}:", text)


def _shifted_octet(octet: int) -> int:
    """octet + 40*SHIFT; past 255 (shifts 4 and up, on the minimal lab's x.x.100) it goes to the
    200s, which no test's octet reaches at shifts 0 to 3, so it stays a valid, unused subnet."""
    moved = octet + 40 * SHIFT
    return moved if moved <= 255 else (moved - 256 + 200) % 256


def topology_text(name: str, lab_name: str) -> str:
    """A shipped topology renamed (and maybe shifted), so tests never touch a user's lab."""
    text = (ROOT / "topology" / f"{name}.yaml").read_text()
    original = next(line for line in text.splitlines() if line.startswith("name:"))
    suffix = f"-{SHIFT}" if SHIFT else ""
    return shift_subnets(text.replace(original, f"name: {lab_name}{suffix}", 1))


class LabUnderTest:
    """Brings a lab up from YAML text and guarantees it is removed afterwards."""

    def __init__(self, client, text: str, file: str = "<test>"):
        self.client = client
        self.lab = load_text(text, file)
        self.plan = make_plan(self.lab, ensure_lab_state(self.lab))

    @property
    def name(self) -> str:
        return self.lab.name

    @property
    def backend(self) -> DockerBackend:
        return DockerBackend(self.client)

    def up(self, text: str | None = None):
        if text is not None:
            self.lab = load_text(text, "<test>")
            self.plan = make_plan(self.lab, ensure_lab_state(self.lab))
        return apply.up(self.client, self.plan)

    def exec(self, node: str, *command: str) -> tuple[int, str]:
        container = self.client.containers.get(f"{self.name}-{node}")
        result = container.exec_run(list(command))
        return result.exit_code, result.output.decode(errors="replace")

    def down(self, volumes: bool = True):
        return apply.down(self.client, self.name, volumes=volumes)


@contextmanager
def running_lab(client, text: str, file: str = "<test>") -> Iterator[LabUnderTest]:
    """A lab brought up from text and removed afterwards (volumes too), whatever happens."""
    lab = LabUnderTest(client, text, file)
    try:
        lab.up()
        yield lab
    finally:
        lab.down(volumes=True)


@pytest.fixture
def make_lab(engine, images):
    made: list[LabUnderTest] = []

    def factory(text: str) -> LabUnderTest:
        lab = LabUnderTest(engine, text)
        made.append(lab)
        return lab

    yield factory
    for lab in made:
        apply.down(engine, lab.name, volumes=True)


def labelled(client, lab: str) -> dict[str, list[str]]:
    """Everything the engine holds with the lab's label (nodes, helpers, networks)."""
    label = {"label": f"{LABEL_LAB}={lab}"}
    return {"containers": sorted(c.name for c in client.containers.list(all=True, filters=label,
                                                                        ignore_removed=True)),
            "networks": sorted(n.name for n in client.networks.list(filters=label))}


def ids(client, lab: str) -> dict[str, str]:
    return {c.name: c.id for c in client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab}"},
                                                         ignore_removed=True)}


def lab_cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    return subprocess.Popen([sys.executable, "-m", "lab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kwargs)


@pytest.fixture(scope="module")
def own_state(tmp_path_factory):
    """The labs' keys and certificates in a folder of the test module's, not the user's state
    (a module asks for it with pytestmark = pytest.mark.usefixtures("own_state"))."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield
