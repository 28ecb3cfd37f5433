"""Your own service in the lab (kind service): topology/examples/bring-your-own.yaml for real.

The example's folder is built, two replicas run behind the lab's lb with TLS, under their
own DNS name, behind a firewall rule that names them; `lab check` passes and `lab trace`
shows the replica that answered. An image that is not on the engine fails before anything
is made.
"""

from __future__ import annotations

import json
import shutil

from .conftest import ROOT, SHIFT, labelled, lab_cli, shift_subnets

EXAMPLES = ROOT / "topology" / "examples"


def example_copy(tmp_path, lab_name: str, replace: tuple[str, str] | None = None):
    """The example and its service folder, renamed and shifted, in a folder of the test's own."""
    text = (EXAMPLES / "bring-your-own.yaml").read_text()
    suffix = f"-{SHIFT}" if SHIFT else ""
    text = shift_subnets(text.replace("name: byo\n", f"name: {lab_name}{suffix}\n", 1))
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    shutil.copytree(EXAMPLES / "hello-service", tmp_path / "hello-service")
    topology = tmp_path / "bring-your-own.yaml"
    topology.write_text(text)
    return topology, f"{lab_name}{suffix}"


def run(*args: str, timeout: float = 900) -> tuple[int, str]:
    process = lab_cli(*args)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def test_an_image_not_on_the_engine_fails_before_anything_is_made(engine, images, tmp_path):
    missing = "lab/no-such-image:never-built"
    topology, lab = example_copy(tmp_path, "it-byo-missing",
                                 ("build: hello-service ", f"image: {missing} "))
    assert not any(image.tags and missing in image.tags for image in engine.images.list())
    try:
        code, output = run("up", str(topology))
        assert code == 1, output
        assert f"image '{missing}' is not on this Docker engine" in output and "never pulls" in output
        assert "Traceback" not in output
        # what the engine holds says the same: not one container, not one network
        assert labelled(engine, lab) == {"containers": [], "networks": []}
    finally:
        run("down", "--lab", lab, "--volumes")


def test_an_image_without_the_lab_start_up_is_refused_before_anything_is_made(engine, images, tmp_path):
    foreign = "lab/debian:bookworm"   # on the engine (the root file system of lab/base), no lab-entrypoint
    assert engine.images.get(foreign)
    topology, lab = example_copy(tmp_path, "it-byo-foreign", ("build: hello-service ", f"image: {foreign} "))
    try:
        code, output = run("up", str(topology))
        assert code == 1, output
        assert f"image '{foreign}' does not start with the lab's start-up" in output, output
        assert "FROM lab/base:latest" in output and "Traceback" not in output
        assert labelled(engine, lab) == {"containers": [], "networks": []}
    finally:
        run("down", "--lab", lab, "--volumes")


def _served_by(engine, lab: str, count: int) -> list[str]:
    laptop = engine.containers.get(f"{lab}-laptop")
    seen = []
    for _ in range(count):
        result = laptop.exec_run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "https://hello.test/"])
        headers = result.output.decode(errors="replace").lower().splitlines()
        seen += [line.split(":", 1)[1].strip() for line in headers if line.startswith("x-served-by:")]
    return seen


def test_bring_your_own_service_comes_up_checks_and_traces(engine, images, tmp_path):
    topology, lab = example_copy(tmp_path, "it-byo")
    try:
        code, output = run("up", str(topology))
        assert code == 0, output

        # the containers run the image built from the folder, with the node's wiring
        hello = engine.containers.get(f"{lab}-hello-1")
        db_address = shift_subnets("198.18.80.10")
        assert hello.image.tags and hello.image.tags[0].startswith(f"lab/{lab}-hello:")
        assert hello.labels["lab.kind"] == "service"
        # the service's own process got the topology's env and the name of its database URL file
        environ = hello.exec_run(["sh", "-c", "for p in /proc/[0-9]*; do grep -qa hello.py $p/cmdline "
                                  "&& tr '\\0' '\\n' < $p/environ; done"]).output.decode()
        assert "GREETING=hello, lab" in environ and "LAB_DATABASE_URL_FILE=/lab/db/url" in environ, environ
        url = hello.exec_run(["cat", "/lab/db/url"]).output.decode()
        assert url.startswith("postgresql://hello_app:") and f"@{db_address}:5432/hello" in url, url

        # both replicas answer behind the lb, over TLS verified with the lab's CA (curl -sS, no -k)
        assert set(_served_by(engine, lab, 6)) == {"hello-1", "hello-2"}

        code, output = run("check", str(topology), "--json")
        assert code == 0, output
        report = json.loads(output)
        assert report["passed"] and len(report["checks"]) == 5, output

        # your service is sealed like every node: no route out, the engine's DNS and gateways silent
        code, output = run("check", str(topology), "--seal", "--json")
        assert code == 0, output
        sealed = {result["node"] for result in json.loads(output)["checks"] if result["passed"]}
        assert {"hello-1", "hello-2"} <= sealed, output

        # a second up finds the built image and every node as planned
        code, output = run("up", str(topology))
        assert code == 0 and "nothing changed" in output, output

        code, output = run("trace", "https://hello.test/", "--lab", lab, "--json")
        assert code == 0, output
        trace = json.loads(output)
        steps = {step["kind"]: step for step in trace["steps"]}
        assert trace["status"] == 200
        assert steps["lb"]["node"] == "lb"
        assert steps["firewall"]["node"] == "fw" and "web-in" in steps["firewall"]["title"] + steps["firewall"]["detail"]
        server = steps["app"]
        assert server["node"] in ("hello-1", "hello-2") and server["source"] == "observed"
        assert "handles the request" in server["title"]
        assert any(server["node"] in e for e in server["evidence"])
    finally:
        code, output = run("down", "--lab", lab, "--volumes")
        assert code == 0, output
    assert labelled(engine, lab) == {"containers": [], "networks": []}
