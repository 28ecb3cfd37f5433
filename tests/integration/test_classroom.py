"""A classroom on one engine: five copies of the default lab, graded into one JUnit file.

Each claim is checked against the engine itself (the copies' own containers,
addresses and states read with the Docker SDK), not against lab's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from ipaddress import ip_address, ip_network

import pytest
from docker.types import IPAMConfig, IPAMPool

from lab.topology import load_copies, load_topology
from tests.integration.conftest import ROOT, SHIFT, labelled, topology_text

COPIES = 5
OWNERS = ["ada", "bob", "cy", "dee", "eve"]
NODES = len(load_topology(ROOT / "topology" / "default.yaml").instances)   # each copy, all of them


def default_lab_in_10_slash_8(name: str) -> str:
    """The default lab with its two ranges moved to 10.(200+SHIFT).0.0/16 and 10.(210+SHIFT).0.0/16:
    its copies spread over many /24s, and there they meet no other test's lab (parallel runs use
    other shifts, hence other /16s)."""
    text = (ROOT / "topology" / "default.yaml").read_text().replace("name: shop", f"name: {name}", 1)
    return text.replace("100.64.", f"10.{200 + SHIFT}.").replace("198.18.", f"10.{210 + SHIFT}.")


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"})


@pytest.fixture(scope="module")
def classroom(engine, images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("classroom")
    topology = folder / "shop.yaml"
    topology.write_text(default_lab_in_10_slash_8(f"class{SHIFT}"))
    roster = folder / "roster.txt"
    roster.write_text("# the class of 2026\n" + "\n".join(OWNERS) + "\n")
    made = lab("up", str(topology), "--roster", str(roster))
    try:
        assert made.returncode == 0, made.stdout + made.stderr
        yield topology
    finally:
        lab("down", str(topology), "--copies", "--volumes")


def copy_names(engine, topology) -> list[str]:
    labels = [c.labels for c in engine.containers.list(filters={"label": "lab.copy"})
              if c.labels.get("lab.file") == str(topology.resolve())]
    return sorted({labels_["lab.name"] for labels_ in labels})


def test_each_copy_is_its_own_lab_with_its_own_addresses(engine, classroom):
    names = copy_names(engine, classroom)
    base = classroom.read_text().split("name: ", 1)[1].split()[0]
    assert names == [f"{base}-{i}" for i in range(1, COPIES + 1)]
    seen: dict[str, str] = {}
    for name in names:
        containers = engine.containers.list(filters={"label": f"lab.name={name}"})
        assert len(containers) == NODES and all(c.status == "running" for c in containers)
        owner = {c.labels["lab.owner"] for c in containers}
        assert owner == {OWNERS[int(name.rsplit("-", 1)[1]) - 1]}
        for container in containers:
            for network in container.attrs["NetworkSettings"]["Networks"].values():
                address = network["IPAddress"]
                assert address not in seen, f"{address} is in {name} and in {seen.get(address)}"
                assert any(ip_address(address) in ip_network(f"10.{second + SHIFT}.0.0/16") for second in (200, 210))
                seen[address] = name


def test_every_copy_is_graded_into_one_junit_file(engine, classroom, tmp_path):
    report = tmp_path / "class.xml"
    graded = lab("check", str(classroom), "--all-copies", "--junit", str(report))
    assert graded.returncode == 0, graded.stdout + graded.stderr
    suites = ET.parse(report).getroot().findall("testsuite")
    assert len(suites) == COPIES
    assert [s.get("name").split("(")[1].rstrip(")") for s in suites] == OWNERS
    assert all(s.get("failures") == "0" and int(s.get("tests")) > 0 for s in suites)
    assert all(len(line) <= 80 for line in graded.stdout.splitlines())


def test_a_broken_copy_fails_alone(engine, classroom, tmp_path):
    broken = copy_names(engine, classroom)[2]
    stopped = lab("stop", "--lab", broken, "lb")
    assert stopped.returncode == 0, stopped.stderr
    try:
        assert engine.containers.get(f"{broken}-lb").status == "exited"   # seen by the engine itself
        report = tmp_path / "class.xml"
        graded = lab("check", str(classroom), "--all-copies", "--junit", str(report))
        assert graded.returncode == 1
        failures = {s.get("name"): int(s.get("failures")) for s in ET.parse(report).getroot()}
        assert failures[f"lab check {broken} (cy)"] > 0
        assert sum(failures.values()) == failures[f"lab check {broken} (cy)"]
        assert f"✗ {broken} (cy)" in graded.stdout
    finally:
        assert lab("start", "--lab", broken, "lb").returncode == 0


def test_bad_requests_make_nothing(engine, images, tmp_path):
    topology = tmp_path / "shop.yaml"
    topology.write_text(default_lab_in_10_slash_8(f"classbad{SHIFT}"))
    roster = tmp_path / "roster.txt"
    roster.write_text("ada\nada\n")
    twice = lab("up", str(topology), "--roster", str(roster))
    assert twice.returncode == 2 and f"{roster}:2: 'ada' is in the roster twice" in twice.stderr
    too_many = lab("up", str(topology), "--copies", "400")   # 10.210.0.0/24..30.0/24: 32 /24s a copy
    assert too_many.returncode == 2 and "400 copies of lab" in too_many.stderr and "at most" in too_many.stderr
    mismatch = lab("up", str(topology), "--copies", "3", "--roster", str(roster.with_name("none.txt")))
    assert mismatch.returncode == 2 and "cannot read the roster" in mismatch.stderr
    assert "Traceback" not in twice.stderr + too_many.stderr + mismatch.stderr
    base = topology.read_text().split("name: ", 1)[1].split()[0]
    for index in range(1, 401):
        assert labelled(engine, f"{base}-{index}") == {"containers": [], "networks": []}


def test_down_copies_leaves_nothing(engine, images, tmp_path):
    topology = tmp_path / "mini.yaml"
    topology.write_text(topology_text("minimal", "classdown"))
    assert lab("up", str(topology), "--copies", "2").returncode == 0
    names = copy_names(engine, topology)
    assert len(names) == 2
    removed = lab("down", str(topology), "--copies")
    assert removed.returncode == 0 and "2 copies" in removed.stdout
    for name in names:
        assert labelled(engine, name) == {"containers": [], "networks": []}


def test_lab_ls_shows_each_copy_its_owner_and_whole_file_path_at_80_columns(engine, classroom):
    listed = lab("ls")
    assert listed.returncode == 0, listed.stderr
    assert all(len(line) <= 80 for line in listed.stdout.splitlines()), listed.stdout
    path = str(classroom.resolve())
    text = "".join(listed.stdout.split())          # a path may stand on its own line; never cut
    assert "".join(path.split()) in text and "…" not in listed.stdout
    for name, owner in zip(copy_names(engine, classroom), OWNERS):
        assert name in listed.stdout and owner in listed.stdout


def test_one_copy_that_cannot_come_up_leaves_the_others_running_and_graded(engine, images, tmp_path):
    """A foreign network of the engine (not a lab's) holds copy 2's server subnet: copy 2 is refused
    with that reason, copies 1 and 3 come up and are graded, and copy 2 leaves nothing behind."""
    name = f"kube-room{SHIFT}"
    topology = tmp_path / "room.yaml"
    topology.write_text((ROOT / "topology" / "minimal.yaml").read_text().replace("name: mini", f"name: {name}", 1)
                        .replace("100.64.100.0/24", f"10.{220 + SHIFT}.0.0/24")      # this test's /16
                        .replace("198.19.100.0/24", f"10.{220 + SHIFT}.1.0/24"))
    copies = load_copies(topology, [(1, ""), (2, ""), (3, "")])
    taken = str(copies[1].spec.networks["server"].subnet)
    squatter = engine.networks.create(f"kube-squat{SHIFT}", driver="bridge",
                                      ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=taken)]))
    report = tmp_path / "room.xml"
    try:
        made = lab("up", str(topology), "--copies", "3", "--check", "--junit", str(report))
        assert made.returncode == 1, made.stdout + made.stderr
        said = " ".join(made.stderr.split())            # the reason may be wrapped over lines
        assert f"✗ {name}-2: lab '{name}-2' cannot be brought up; nothing was changed" in said
        seen = engine.networks.get(squatter.id).attrs["IPAM"]["Config"][0]["Subnet"]   # the engine's word
        assert f"network 'server' ({seen}) overlaps engine network '{squatter.name}'" in said
        assert f"2 of 3 copies up; failed: {name}-2" in made.stdout
        assert all(len(line) <= 80 for line in made.stderr.splitlines()), made.stderr     # wrapped, words whole
        for copy in (f"{name}-1", f"{name}-3"):
            containers = engine.containers.list(filters={"label": f"lab.name={copy}"})
            assert len(containers) == 3 and all(c.status == "running" for c in containers)
            assert f"✓ {copy}: 4 of 4 checks passed" in made.stdout
        suites = ET.parse(report).getroot().findall("testsuite")
        assert sorted(s.get("name") for s in suites) == [f"lab check {name}-1", f"lab check {name}-3"]
        assert all(s.get("failures") == "0" for s in suites)
        assert labelled(engine, f"{name}-2") == {"containers": [], "networks": []}
        assert engine.networks.get(squatter.id).attrs["Containers"] == {}     # the foreign network untouched
    finally:
        lab("down", str(topology), "--copies")
        squatter.remove()
    for copy in copies:
        assert labelled(engine, copy.name) == {"containers": [], "networks": []}
