"""Images against a real Docker engine: build, reuse, contents, start-up.

Everything these tests create carries the label lab.test=images and is removed
at the end, also when a test fails.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import time

import docker
import docker.errors
import pytest

from lab.kinds.database import KIND as DATABASE
from lab.plan.route_script import ROUTE_SCRIPT
from lab.backends.docker.images import (
    IMAGE_FOR_KIND,
    IMAGE_LABEL,
    ImageBuildError,
    ensure_images,
    ensure_lab_base,
    services_dir,
)

pytestmark = pytest.mark.integration

TEST_LABEL = {"lab.test": "images"}
SUBNET = "198.18.250.0/24"  # RFC 2544 benchmarking space: never the real Internet


@pytest.fixture(scope="module")
def client():
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker engine: {e}")
    _sweep(engine)
    yield engine
    _sweep(engine)
    engine.close()


def _sweep(engine: docker.DockerClient) -> None:
    label = "lab.test=images"
    for container in engine.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in engine.networks.list(filters={"label": label}):
        network.remove()
    for volume in engine.volumes.list(filters={"label": label}):
        volume.remove(force=True)


@pytest.fixture(scope="module")
def tags(client) -> dict[str, str]:
    """All images, built once for the module (cold or warm)."""
    return ensure_images(client, IMAGE_FOR_KIND)


@pytest.fixture
def containers(client):
    """Containers a test makes; removed whatever the outcome."""
    made: list = []
    yield made
    _remove_all(made)


def test_every_kind_gets_a_labelled_image(client, tags):
    assert set(tags) == set(IMAGE_FOR_KIND)
    for kind, tag in tags.items():
        folder = IMAGE_FOR_KIND[kind]
        assert tag.startswith(f"lab/{folder}:")
        assert client.images.get(tag).labels[IMAGE_LABEL] == folder


def test_second_call_builds_nothing(client, tags):
    lines: list[tuple[str, str]] = []
    started = time.monotonic()
    again = ensure_images(client, IMAGE_FOR_KIND, progress=lambda name, line: lines.append((name, line)))
    elapsed = time.monotonic() - started
    assert again == tags
    assert lines == []
    assert elapsed < 10, f"a warm ensure_images took {elapsed:.1f} s"


def test_a_failing_build_reports_its_last_lines(client, tags, tmp_path, monkeypatch):
    broken = tmp_path / "services"
    shutil.copytree(services_dir(), broken)
    dockerfile = broken / "client" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo about-to-fail && false\n")
    monkeypatch.setenv("LAB_SERVICES_DIR", str(broken))
    # A failed build leaves no tagged image and no container (forcerm), only
    # cached layers the engine may reuse or prune.
    with pytest.raises(ImageBuildError) as caught:
        ensure_images(client, ["client"])  # the unchanged base is reused
    message = str(caught.value)
    assert "building lab/client:" in message and "non-zero code" in message
    assert "about-to-fail" in message  # from the build output's tail


SOFTWARE = {
    "client": ["sh", "-c", "command -v wrk tcpdump mtr openssl dig curl traceroute"],
    "router": ["sh", "-c", "iptables -V && ip -V && conntrack --version && command -v tcpdump"],
    "dns": ["named", "-v"],
    "resolver": ["unbound", "-V"],
    "load-balancer": ["nginx", "-v"],
    "app": ["/opt/app/bin/python", "-c", "import fastapi, psycopg, uvicorn; print('imports ok')"],
    "database": ["/usr/lib/postgresql/15/bin/postgres", "--version"],
}
EXPECTED = {
    "client": "/usr/bin/wrk",
    "router": "iptables v1.8",
    "dns": "BIND 9.18",
    "resolver": "Version 1.17",
    "load-balancer": "nginx/1.22",
    "app": "imports ok",
    "database": "PostgreSQL) 15",
}


@pytest.mark.parametrize("folder", sorted(SOFTWARE))
def test_image_has_its_software(client, tags, containers, folder):
    tag = next(t for kind, t in tags.items() if IMAGE_FOR_KIND[kind] == folder)
    code, output = _run_to_end(client, containers, tag, SOFTWARE[folder])
    assert code == 0, output
    assert EXPECTED[folder] in output
    assert "lab-init: done" in output  # the command ran after the common start-up


# Each image started with its default command and no /lab/etc: the stand-in
# configuration must come up and answer locally.
STAND_IN_PROBES = {
    "dns": (["dig", "+time=1", "+tries=1", "@127.0.0.1", "example.", "SOA"], "status: REFUSED"),
    "resolver": (["dig", "+time=1", "+tries=1", "@127.0.0.1", "example.", "A"], "status: NXDOMAIN"),
    "load-balancer": (["curl", "-sS", "http://127.0.0.1/"], "Welcome to nginx"),
    "app": (["curl", "-sS", "http://127.0.0.1:8000/healthz"], '"status":"ok"'),
    "database": (
        ["sh", "-c", 'PGPASSWORD="$(cat /var/lib/postgresql/data/lab-generated-password)" '
         "psql -h 127.0.0.1 -U lab -d lab -tAc 'select 40+2'"],
        "42",
    ),
}  # fmt: skip


@pytest.mark.parametrize("folder", sorted(STAND_IN_PROBES))
def test_service_starts_with_its_stand_in_config(client, tags, containers, folder):
    tag = next(t for kind, t in tags.items() if IMAGE_FOR_KIND[kind] == folder)
    container = client.containers.run(tag, detach=True, labels=TEST_LABEL)
    containers.append(container)
    command, expected = STAND_IN_PROBES[folder]
    output = _poll_exec(container, command, expected)
    assert expected in output, container.logs().decode(errors="replace")
    if folder == "database":   # serving: the kind's own probe passes too
        _exec(container, list(DATABASE.probe.command))


def test_database_probe_asks_pg_isready_only_once_postgres_says_ready(client, tags, containers):
    """The database kind's probe: its status line first (builtins), pg_isready only then.
    A pg_isready of our own, first on PATH, leaves a mark when it is asked; the real one
    answers for a status line left by a server that is gone."""
    container = client.containers.run(tags["database"], ["sleep", "infinity"], entrypoint=[], detach=True,
                                      labels=TEST_LABEL)
    containers.append(container)
    _exec(container, ["sh", "-c", "mkdir -p /tmp/marking /var/lib/postgresql/data && printf '%s\\n' "
                      "'#!/bin/sh' ': > /tmp/asked' > /tmp/marking/pg_isready && chmod +x /tmp/marking/pg_isready"])
    pid_file = "printf '1\\n/var/lib/postgresql/data\\n3\\n5432\\n/run\\n*\\n7 8\\n%s\\n' '{}' " \
               "> /var/lib/postgresql/data/postmaster.pid"
    probe = DATABASE.probe.command[2]
    for status, passes, asked in ((None, False, False), ("starting", False, False), ("ready   ", True, True)):
        setup = "rm -f /tmp/asked /var/lib/postgresql/data/postmaster.pid" + \
            ("" if status is None else " && " + pid_file.format(status))
        code, _ = container.exec_run(["sh", "-c", f"{setup} && PATH=/tmp/marking:$PATH; {probe}"])
        assert (code == 0) == passes, status
        assert (container.exec_run(["test", "-e", "/tmp/asked"]).exit_code == 0) == asked, status
    code, _ = container.exec_run(["sh", "-c", probe])   # "ready" left behind, no server: the real one says no
    assert code != 0


PGDATA = "/var/lib/postgresql/data"


def test_database_template_has_no_free_space_or_visibility_maps(client, tags, containers):
    """PostgreSQL makes a relation's free-space and visibility maps when it needs them: the
    image's cluster template leaves them out (fewer files to copy for every new cluster; the
    clusters made from it serve, as the next test shows)."""
    code, output = _run_to_end(client, containers, tags["database"], [
        "sh", "-c", "t=/usr/local/share/lab/pg-template; echo files $(find $t -type f | wc -l); "
                    "echo maps $(find $t -name '*_fsm' -o -name '*_vm' | wc -l)"])
    counts = {line.split()[0]: int(line.split()[1]) for line in output.splitlines()
              if line.split()[:1] in (["files"], ["maps"])}
    assert code == 0 and counts["files"] > 500 and counts["maps"] == 0, output


def test_database_uses_lab_db_files_and_keeps_its_cluster(client, tags, containers):
    volume = client.volumes.create("lab-test-images-pgdata", labels=TEST_LABEL)
    settings = {"db/name": "shop", "db/user": "shopper", "db/password": "s3cret 'quoted'"}
    probe = ["sh", "-c", "PGPASSWORD=\"s3cret 'quoted'\" psql -h 127.0.0.1 -U shopper -d shop -tAc 'select current_user'"]
    try:
        for attempt in ("first", "second"):
            container = client.containers.create(
                tags["database"], labels=TEST_LABEL, volumes={volume.name: {"bind": "/var/lib/postgresql/data"}}
            )
            containers.append(container)
            container.put_archive("/lab", _tar(settings))
            container.start()
            assert "shopper" in _poll_exec(container, probe, "shopper"), attempt
            logs = container.logs().decode()
            if attempt == "first" and _exec(container, ["stat", "-f", "-c", "%T", PGDATA]).startswith("ext2"):
                # ext4 (stat says ext2/ext3): the new cluster's directory is marked "top", so ext4
                # spreads its subdirectories over other block groups (README: Speed)
                assert "T" in _exec(container, ["lsattr", "-d", PGDATA]).split()[0]
            _remove_all(containers)
        assert "using the existing cluster" in logs  # the second start kept the data
    finally:
        _remove_all(containers)
        volume.remove(force=True)


def test_lab_init_applies_routes_and_resolver(client, tags, containers):
    network = client.networks.create(
        "lab-test-images-net",
        driver="bridge",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway="198.18.250.254")]),
        labels=TEST_LABEL,
    )
    try:
        container = client.containers.create(
            ensure_lab_base(client), network=network.name, cap_add=["NET_ADMIN"], labels=TEST_LABEL
        )
        containers.append(container)
        routes = "# lab routes\n198.19.0.0/16 via 198.18.250.5\ndefault via 198.18.250.6\n"
        resolv = "nameserver 198.18.250.53\nsearch lab.test\n"
        container.put_archive("/lab", _tar({"routes": routes, "resolv.conf": resolv, "env": "LAB_NODE=n1\n"}))
        container.start()
        _poll_exec(container, ["test", "-e", "/run/lab/init-done"], "")
        table = _exec(container, ["ip", "route"])
        assert "198.19.0.0/16 via 198.18.250.5" in table
        assert "default via 198.18.250.6" in table
        assert "198.18.250.254" not in table  # the engine's default route is gone
        assert _exec(container, ["cat", "/etc/resolv.conf"]) == resolv
        assert "lab-init: node n1" in container.logs().decode()
    finally:
        _remove_all(containers)
        network.remove()


def test_lab_init_fails_loudly_on_a_bad_route(client, tags, containers):
    container = client.containers.create(ensure_lab_base(client), cap_add=["NET_ADMIN"], labels=TEST_LABEL)
    containers.append(container)
    # 192.0.2.1 (TEST-NET-1) is on no attached network: the route cannot exist.
    container.put_archive("/lab", _tar({"routes": "198.19.0.0/16 via 192.0.2.1\n"}))
    container.start()
    assert container.wait(timeout=30)["StatusCode"] != 0
    logs = container.logs(stdout=False, stderr=True).decode()
    assert "lab-init: error: cannot install route '198.19.0.0/16 via 192.0.2.1'" in logs


def test_route_script_installs_both_families_in_one_batch_and_names_a_bad_route(client, tags, containers):
    """The script the route helper runs in a node's namespace (lab/plan/route_script.py): the
    engine's default routes go, the lab's go in; a route ip refuses is named with ip's reason."""
    network = client.networks.create(
        "lab-test-images-routes", driver="bridge", enable_ipv6=True, labels=TEST_LABEL,
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="198.18.249.0/24"),
                                                   docker.types.IPAMPool(subnet="fd6c:6161:249::/64")]))
    show = 'sh -c "$S"; echo "exit $?"; ip -4 route; ip -6 route'
    try:
        def run(routes: str) -> str:
            container = client.containers.create(
                ensure_lab_base(client), ["sh", "-c", show], entrypoint=[], network=network.name,
                cap_add=["NET_ADMIN"], labels=TEST_LABEL, environment={"S": ROUTE_SCRIPT, "LAB_ROUTES": routes})
            containers.append(container)
            container.start()
            assert container.wait(timeout=60)["StatusCode"] == 0
            return container.logs().decode()

        good = run("# lab routes\n198.19.0.0/16 via 198.18.249.5\ndefault via 198.18.249.6\n"
                   "default via fd6c:6161:249::7\nfd6c:1::/64 via fd6c:6161:249::8\n")
        assert "exit 0" in good
        for route in ("198.19.0.0/16 via 198.18.249.5", "default via 198.18.249.6",
                      "default via fd6c:6161:249::7", "fd6c:1::/64 via fd6c:6161:249::8"):
            assert route in good
        assert "198.18.249.1 " not in good and "fd6c:6161:249::1 " not in good   # the engine's defaults

        bad = run("198.19.0.0/16 via 198.18.249.5\n10.7.0.0/16 via 192.0.2.1\n")
        assert "cannot install route: 10.7.0.0/16 via 192.0.2.1 (Error: Nexthop has invalid gateway.)" in bad
        assert "exit 1" in bad
    finally:
        _remove_all(containers)
        network.remove()


# The FIFO wait of services/base/lib/wait.sh, in the real image: a wake ends a wait at once,
# whether it comes before or during the read, one wake ends every waiter's, and nobody
# waiting never blocks the waker. Each waiter's slice is 30 s here, so a wake that did not
# work shows as a wait of 30 s, far above the bounds below.
WAIT_SCRIPT = r"""
. /usr/local/lib/lab/wait.sh
LAB_WAIT_SLICE=30
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now); lab_wake /run/lab/none.fifo; echo "nobody $(now) $t0"
lab_wait_open /run/lab/w.fifo   # held here too: a wake before a waiter reads is kept for it
waiter() { lab_wait_open /run/lab/w.fifo; lab_wait_slice; echo "woken $1 $(now)"; }
waiter a & waiter b &
sleep 0.5; t1=$(now); lab_wake /run/lab/w.fifo; wait
echo "woke $t1"
lab_wait_open /run/lab/x.fifo; lab_wake /run/lab/x.fifo; t2=$(now); lab_wait_slice; echo "before $(now) $t2"
lab_wait_close; lab_wait_open /run/lab/y.fifo
LAB_WAIT_SLICE=0.3; t3=$(now); lab_wait_slice; echo "unwoken $(now) $t3"
"""


def test_fifo_wait_is_woken_at_once_and_never_blocks_the_waker(client, tags, containers):
    code, output = _run_to_end(client, containers, ensure_lab_base(client), ["sh", "-c", WAIT_SCRIPT])
    assert code == 0, output
    lines = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.strip()}
    nobody_end, nobody_start = map(float, lines["nobody"])
    assert nobody_end - nobody_start < 2, output   # a waker with nobody waiting does not block
    woke_at = float(lines["woke"][0])
    woken = [line.split() for line in output.splitlines() if line.startswith("woken ")]
    assert len(woken) == 2, output                  # one wake ended both waits
    assert all(float(seconds) - woke_at < 5 for _, _, seconds in woken), output
    before_end, before_start = map(float, lines["before"])
    assert before_end - before_start < 5, output    # a wake sent before the read is kept
    unwoken_end, unwoken_start = map(float, lines["unwoken"])
    assert 0.2 < unwoken_end - unwoken_start < 5, output   # no wake: the slice ends on time


LISTENING_SCRIPT = r"""
lab-listening tcp 8123; echo "before $?"
python3 -c '
import socket, time
listening = socket.socket(); listening.bind(("127.0.0.1", 8123)); listening.listen()
bound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); bound.bind(("127.0.0.1", 8124))
idle = socket.socket(); idle.bind(("127.0.0.1", 8125))   # bound, never listening
six = socket.socket(socket.AF_INET6); six.bind(("::1", 8126)); six.listen()
open("/tmp/up", "w").close(); time.sleep(60)' &
n=0; while [ ! -e /tmp/up ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
lab-listening tcp 8123; echo "tcp $?"
lab-listening udp 8124; echo "udp $?"
lab-listening udp 8123; echo "other-protocol $?"
lab-listening tcp 8125; echo "bound-only $?"
lab-listening tcp 8126; echo "ipv6 $?"
lab-listening tcp 80; echo "nothing $?"
lab-listening sctp 80; echo "usage $?"
"""


def test_lab_listening_reads_the_kernels_socket_tables(client, tags, containers):
    """The probes' cheap first step: true only for a listening tcp socket (either family) or
    a bound udp one, on the very port; compared with sockets this test opened itself."""
    container = client.containers.run(ensure_lab_base(client), ["sh", "-c", LISTENING_SCRIPT], entrypoint=[],
                                      network_mode="none", sysctls={"net.ipv6.conf.all.disable_ipv6": "0"},
                                      detach=True, labels=TEST_LABEL)
    containers.append(container)
    assert container.wait(timeout=60)["StatusCode"] == 0
    output = container.logs().decode(errors="replace")
    said = dict(line.split() for line in output.splitlines() if len(line.split()) == 2)
    assert said == {"before": "1", "tcp": "0", "udp": "0", "other-protocol": "1", "bound-only": "1",
                    "ipv6": "0", "nothing": "1", "usage": "2"}, output


# --- helpers -------------------------------------------------------------------


def _remove_all(containers: list) -> None:
    """Remove the containers and empty the list (so a later sweep skips them)."""
    while containers:
        try:
            containers.pop().remove(force=True)
        except docker.errors.NotFound:
            pass


def _run_to_end(client, containers, tag: str, command: list[str]) -> tuple[int, str]:
    container = client.containers.run(tag, command, detach=True, labels=TEST_LABEL)
    containers.append(container)
    code = container.wait(timeout=60)["StatusCode"]
    return code, container.logs().decode(errors="replace")


def _exec(container, command: list[str]) -> str:
    code, output = container.exec_run(command)
    assert code == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


def _poll_exec(container, command: list[str], expected: str, timeout: float = 60) -> str:
    """Run command until it succeeds with `expected` in its output (services start async)."""
    deadline = time.monotonic() + timeout
    output = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            pytest.fail("container exited:\n" + container.logs().decode(errors="replace"))
        code, raw = container.exec_run(command)
        output = raw.decode(errors="replace")
        if code == 0 and expected in output:
            return output
        time.sleep(0.5)
    pytest.fail(f"{command} never printed {expected!r}; last output:\n{output}")


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in sorted({name.rpartition("/")[0] for name in files} - {""}):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_lab_zones_puts_the_serial_in_with_the_shell_and_keeps_every_other_byte(client, tags, containers):
    """lab-zones (the DNS image) writes each zone from its template with the serial in place
    of every LAB_SERIAL, by the shell's own string handling: compared with Python's replace,
    line for line, for a template with odd lines; a changed template gets a higher serial."""
    template = ("$TTL 300\n@ IN SOA ns. admin. ( LAB_SERIAL 1 1 1 1 ) ; LAB_SERIAL twice\n"
                "  indented\\tline with a \\\\backslash and * and $HOME\n\n"
                "@ IN TXT \"LAB_SERIALLAB_SERIAL\"\nlast line without newline")
    tag = next(t for kind, t in tags.items() if IMAGE_FOR_KIND[kind] == "dns")
    container = client.containers.create(tag, ["sleep", "infinity"], entrypoint=[], labels=TEST_LABEL)
    containers.append(container)
    container.put_archive("/lab", _tar({"etc/zones/t.zone": template}))
    container.start()
    _exec(container, ["/usr/local/bin/lab-zones"])
    first = _exec(container, ["cat", "/var/lib/lab-dns/state/t.zone.serial"]).strip()
    assert int(first) >= int(time.time()) - 60
    written = _exec(container, ["cat", "/var/lib/lab-dns/zones/t.zone"])
    assert written == template.replace("LAB_SERIAL", first) + "\n"
    container.put_archive("/lab", _tar({"etc/zones/t.zone": template + "\nchanged"}))
    _exec(container, ["/usr/local/bin/lab-zones"])   # the file exists now: replaced whole
    second = _exec(container, ["cat", "/var/lib/lab-dns/state/t.zone.serial"]).strip()
    assert int(second) > int(first)
    assert _exec(container, ["cat", "/var/lib/lab-dns/zones/t.zone"]) == \
        (template + "\nchanged").replace("LAB_SERIAL", second) + "\n"
    assert _exec(container, ["ls", "/var/lib/lab-dns/zones"]).split() == ["t.zone"]
