"""The exported compose file, run by Debian's docker-compose, gives the same working lab."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from click.testing import CliRunner

from lab.cli import main
from lab.backends.docker import apply
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
    source = tmp_path / "lab.yaml"
    source.write_text(topology_text("default", "it-compose"))
    lab = load_text(source.read_text(), str(source))
    # written by the command a user runs: secrets 0600, the lab's directory 0700
    exported = CliRunner().invoke(main, ["export", "compose", str(source), "-o", str(tmp_path / "compose.yaml")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "compose.d" / lab.name / "lb" / "tls" / "server.key").stat().st_mode & 0o777 == 0o600
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
        # dual-stack like `lab up`: the lab's own DNS gives the shop's IPv6 address (AAAA),
        # and the page comes over IPv6 from it (curl -6 says which address it reached)
        lb6 = str(lab.instance("lb").first_address6)
        looked_up = laptop.exec_run(["dig", "+short", "+time=2", "www.shop.test", "AAAA"])
        assert looked_up.output.decode().split() == [lb6], looked_up.output.decode()
        over_v6 = laptop.exec_run(["curl", "-6", "-sS", "--max-time", "10", "-o", "/dev/null",
                                   "-w", "%{http_code} %{remote_ip}", "https://www.shop.test/"])
        assert over_v6.output.decode() == f"200 {lb6}", over_v6.output.decode()
        # the load balancer saw the laptop's IPv6 request: home-router masquerades it, so the
        # source is home-router's IPv6 address on the ISP network (its access log)
        source6 = str(lab.instance("home-router").addresses6["isp"])
        lb = engine.containers.get(f"{lab.name}-lb")
        logged = lb.exec_run(["sh", "-c", "cat /var/log/nginx/access.json"]).output.decode()
        assert source6 in logged, logged[-1500:]
        # sealed like `lab up`: no masquerade, the engine's DNS does not answer
        options = engine.networks.get(f"{lab.name}-data").attrs["Options"]
        assert options.get("com.docker.network.bridge.enable_ip_masquerade") == "false"
        db = engine.containers.get(f"{lab.name}-db")
        asked = db.exec_run(["dig", "+time=1", "+tries=1", "@127.0.0.11", f"{lab.name}-fw", "A"])
        assert asked.exit_code == 9, asked.output.decode()
    finally:
        subprocess.run([*run, "down", "-v"], capture_output=True, timeout=300)
        apply.down(engine, lab.name, volumes=True)
