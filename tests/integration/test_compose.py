"""The exported compose file, run by Debian's docker-compose, gives the same working lab."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from lab.export.compose import compose_files, compose_text
from lab.plan import make_plan
from lab.runtime import apply
from lab.state import ensure_lab_state
from lab.topology import load_text

from .conftest import topology_text


@pytest.fixture
def compose_cli():
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs docker-compose (scripts/setup.sh installs it)")
        pytest.skip("no docker-compose: apt-get install docker-compose")
    return path


def test_compose_lab_serves_the_shop_like_lab_up(engine, images, compose_cli, tmp_path):
    lab = load_text(topology_text("default", "it-compose"), str(tmp_path / "lab.yaml"))
    plan = make_plan(lab, ensure_lab_state(lab))
    (tmp_path / "compose.yaml").write_text(compose_text(plan, "compose.d", "lab.yaml"))
    for relative, content in compose_files(plan, "compose.d").items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    run = ["docker-compose", "-p", lab.name, "-f", str(tmp_path / "compose.yaml")]
    try:
        started = subprocess.run([*run, "up", "-d"], capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stderr[-2000:]
        # `up -d` returns once the last stage has started; wait for it to be healthy too.
        laptop = engine.containers.get(f"{lab.name}-laptop")
        deadline = time.monotonic() + 120
        while laptop.attrs["State"].get("Health", {}).get("Status") != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
            laptop.reload()
        result = laptop.exec_run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                  "https://www.shop.test/"])
        assert result.output.decode() == "200", result.output.decode()
    finally:
        subprocess.run([*run, "down", "-v"], capture_output=True, timeout=300)
        apply.down(engine, lab.name, volumes=True)
