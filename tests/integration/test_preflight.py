"""`lab validate --deep`: BIND's named-checkzone judges the rendered zones, and its refusals
come back at the topology line that produced them, with nothing left running."""

from pathlib import Path

from click.testing import CliRunner

from lab.cli import main

ROOT = Path(__file__).resolve().parents[2]
VALID = (ROOT / "tests" / "fixtures" / "valid-small.yaml").read_text()


def preflight_containers(engine) -> list:
    return engine.containers.list(all=True, filters={"label": "lab.preflight"})


def test_a_record_only_bind_refuses_is_reported_at_its_line(engine, images, tmp_path):
    # An underscore in a host name passes lab's own checks (SRV names use them), but BIND's
    # check-names refuses it on an A record and would not load the zone at all.
    topology = tmp_path / "underscore.yaml"
    topology.write_text(VALID.replace("      www: {A: lb}", "      www: {A: lb}\n      my_host: {A: lb}"))
    assert CliRunner().invoke(main, ["validate", str(topology)]).exit_code == 0
    result = CliRunner().invoke(main, ["validate", "--deep", str(topology)])
    assert result.exit_code == 2, result.output
    line = next(l for l in result.output.splitlines() if "named-checkzone" in l)
    assert line.startswith(f"{topology}:35:17: zones.site.test.records.my_host.A: ")
    assert "bad owner name (check-names)" in line
    assert preflight_containers(engine) == []


def test_the_default_lab_passes_and_every_zone_is_judged(engine, images):
    result = CliRunner().invoke(main, ["validate", "--deep", str(ROOT / "topology" / "default.yaml")])
    assert result.exit_code == 0, result.output
    # 2 written, root, 6 IPv4 reverse (in-addr.arpa), 6 IPv6 reverse (ip6.arpa: every network is dual-stack)
    assert "named-checkzone accepts all 15 zones" in result.output
    assert preflight_containers(engine) == []


def test_lab_up_refuses_a_zone_bind_would_refuse_before_changing_the_running_lab(engine, images, tmp_path):
    import subprocess
    import sys

    from lab.backends.docker import apply

    from .conftest import ids, shift_subnets

    good = tmp_path / "lab.yaml"
    good.write_text(shift_subnets(VALID.replace("name: ", "name: it-pre-", 1)))
    assert subprocess.run([sys.executable, "-m", "lab", "up", str(good)], capture_output=True).returncode == 0
    name = next(line.split()[1] for line in good.read_text().splitlines() if line.startswith("name:"))
    try:
        before = ids(engine, name)
        bad = tmp_path / "bad.yaml"
        bad.write_text(good.read_text().replace("      www: {A: lb}", "      www: {A: lb}\n      my_host: {A: lb}"))
        result = subprocess.run([sys.executable, "-m", "lab", "up", str(bad)], capture_output=True, text=True)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{bad}:35:17: zones.site.test.records.my_host.A: " in result.stderr
        assert "bad owner name (check-names)" in result.stderr and "Traceback" not in result.stderr
        assert ids(engine, name) == before            # nothing of the running lab changed
        assert preflight_containers(engine) == []
    finally:
        apply.down(engine, name, volumes=True)
