"""Kind service: your own image or Dockerfile folder, planned like any node."""

from pathlib import Path

import pytest

from lab.export.compose import compose_document, secret_paths
from lab.plan import LabState, make_plan
from lab.topology import TopologyError, load_text, load_topology

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "topology" / "examples" / "bring-your-own.yaml"

LAB = """
name: own
networks:
  net: {subnet: 198.18.90.0/24}
nodes:
  web:
    kind: service
    networks: {net: 198.18.90.10}
SERVICE
  db:
    kind: database
    networks: {net: 198.18.90.20}
"""


def plan_of(service: str, file: str = "<text>"):
    lab = load_text(LAB.replace("SERVICE", service), file)
    return make_plan(lab, LabState({"db/db.password": "s3cret"})).container("web")


def problems(service: str) -> str:
    with pytest.raises(TopologyError) as caught:
        load_text(LAB.replace("SERVICE", service))
    return "\n".join(str(p) for p in caught.value.problems)


def test_an_image_runs_with_its_command_env_and_ports():
    web = plan_of("    image: me/web:1\n    command: [web, --port, '9000']\n    ports: [9000]\n"
                  "    env: {GREETING: hello world, MODE: fast}")
    assert (web.image, web.build, web.command, web.service) == ("me/web:1", None, ("web", "--port", "9000"), "")
    # /lab/env is read by a shell: a value with a space is quoted, a plain one left alone
    assert "GREETING='hello world'\n" in web.files["env"] and "MODE=fast\n" in web.files["env"]
    assert "LAB_SERVICE_PORT=9000\n" in web.files["env"]
    assert web.probe.command == ("nc", "-z", "127.0.0.1", "9000")   # no ready: its first port


def test_a_build_folder_is_relative_to_the_topology_file(tmp_path):
    web = plan_of("    build: ../svc", str(tmp_path / "labs" / "own.yaml"))
    assert web.build == str((tmp_path / "svc").resolve()) and web.image is None and web.command is None


@pytest.mark.parametrize("ready, command", [
    ("{http: /healthz}", ("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz")),
    ("{tcp: 7000}", ("nc", "-z", "127.0.0.1", "7000")),
    ("{command: 'test -e /tmp/up', timeout: 5}", ("sh", "-c", "test -e /tmp/up")),
])
def test_readiness_is_an_http_path_a_tcp_port_or_a_command(ready, command):
    web = plan_of(f"    image: me/web:1\n    ports: [8080]\n    ready: {ready}")
    assert web.probe.command == command


def test_without_ports_or_probe_it_is_ready_when_the_lab_start_up_finished():
    assert plan_of("    image: me/web:1").probe.command == ("test", "-e", "/run/lab/init-done")


def test_database_wiring_hands_over_the_url_in_a_secret_file():
    web = plan_of("    image: me/web:1\n    database: db")
    assert web.files["db/url"] == "postgresql://app_app:s3cret@198.18.90.20:5432/app\n"
    assert "LAB_DATABASE_URL_FILE=/lab/db/url\n" in web.files["env"] and "s3cret" not in web.files["env"]
    assert web.depends_on == ("db",)
    lab = load_text(LAB.replace("SERVICE", "    image: me/web:1\n    database: db"))
    plan = make_plan(lab, LabState())
    assert plan.container("db").files["db/allow"] == "198.18.90.0/24\n"   # pg_hba lets it in
    assert "compose.d/own/web/db/url" in secret_paths(plan, "compose.d/own")


@pytest.mark.parametrize("service, message", [
    ("    ports: [80]", "exactly one of image (a local image) or build"),
    ("    image: a\n    build: b", "exactly one of image (a local image) or build"),
    ("    image: a\n    ready: {http: /x, tcp: 80}", "exactly one of http, tcp, command (this one has http, tcp)"),
    ("    image: a\n    ready: {http: healthz}", "'healthz' is not a path: write it like /healthz"),
    ("    image: a\n    env: {1BAD: x}", "env"),
])
def test_wrong_service_input_is_named(service, message):
    assert message in problems(service)


def test_the_example_exports_to_compose_with_its_build_folder():
    plan = make_plan(load_topology(EXAMPLE), LabState())
    document = compose_document(plan, "compose.d/byo", "topology/examples/bring-your-own.yaml")
    hello = document["services"]["hello-1"]
    assert hello["image"] == "lab/byo-hello:latest"
    assert hello["build"] == str((EXAMPLE.parent / "hello-service").resolve())
    assert "build" not in document["services"]["hello-1-routes"]
    lb = plan.container("lb").files.get("etc/nginx.conf") or plan.container("lb").live_files["etc/nginx.conf"]
    assert "server 198.18.70.11:8080" in lb and "server 198.18.70.12:8080" in lb


def test_a_trace_takes_the_server_from_the_lbs_log_when_the_server_logs_no_trace_id():
    from lab.trace.web import upstream_attempts, upstream_that_answered

    names = {"198.18.70.11": "hello-1", "198.18.70.12": "hello-2"}
    retried = upstream_attempts({"upstream_addr": "198.18.70.11:8080, 198.18.70.12:8080",
                                 "upstream_status": "502, 200", "upstream_connect_time": "-, 0.001",
                                 "upstream_response_time": "0.001, 0.002"})
    assert upstream_that_answered(retried, names) == "hello-2"
    failed = upstream_attempts({"upstream_addr": "198.18.70.11:8080", "upstream_status": "504",
                                "upstream_connect_time": "-", "upstream_response_time": "1.0"})
    assert upstream_that_answered(failed, names) is None       # the lb's own error: no server answered
    assert upstream_that_answered([], names) is None           # no lb in the way
