"""DockerBackend: the Backend protocol (lab/backends/protocol.py) on a Docker engine.

A thin class over this package's modules: it holds the one client that
`lab.backends.open_backend()` made and turns lab terms (lab, node) into
containers. Nothing outside this package sees a container or the client.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path
from typing import BinaryIO, ContextManager, Iterator

import docker
import docker.errors

from lab.backends.docker import apply, browser, capture, impair, inspect, recording
from lab.backends.docker.engine import engine_call, run_command
from lab.backends.docker.images import KnownImages, cache_dir, ensure_helper_image, ensure_images
from lab.backends.docker.objects import lab_containers, remove_container
from lab.backends.protocol import (CaptureRequest, CaptureResult, DownReport, Events, ExecResult, LabSummary,
                                   NodeStatus, Progress, Recording, UpReport)
from lab.errors import RuntimeFailure
from lab.impair import Applied, Impairment
from lab.plan.model import LABEL_KIND, LABEL_NODE, Plan

# Marks run_isolated's throwaway containers (the pre-flight's named-checkzone runs there first).
ISOLATED_LABEL = "lab.preflight"


def isolated_runs_dir() -> Path:
    """Where run_isolated keeps the output of each distinct run (small text files)."""
    return cache_dir() / "isolated-runs"


def _keep_text(path: Path, text: str) -> None:
    """Write whole or not at all (a rename), so a reader never sees half an output."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        scratch.write_text(text)
        scratch.replace(path)
    except OSError:
        pass   # keeping it is an optimisation: a read-only cache only costs the next run its time


class DockerBackend:
    """Runs labs as containers and bridge networks, found again by their labels."""

    name = "docker"

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self._netem: bool | None = None
        self._images: dict[str, str] = {}   # kind -> image tag, as found or built by this backend
        self._asked: set[str] = set()
        self._known: KnownImages | None = None   # the engine's lab images, listed once

    # lifecycle -------------------------------------------------------------

    def up(self, plan: Plan, events: Events | None = None, progress: Progress | None = None) -> UpReport:
        images = self.build(sorted({c.kind for c in plan.containers}), progress)
        return apply.up(self.client, plan, events, progress, images=images)

    def down(self, lab: str, volumes: bool = False) -> DownReport:
        return apply.down(self.client, lab, volumes=volumes)

    def build(self, kinds: list[str], progress: Progress | None = None, force: bool = False) -> dict[str, str]:
        """Each kind's image tag, made if missing. Found once per backend: a command asking
        twice (the pre-flight's image, then up's) lists the engine's images once."""
        missing = [kind for kind in kinds if force or kind not in self._asked]
        if missing:
            if self._known is None:
                self._known = KnownImages(self.client)
            self._images.update(ensure_images(self.client, missing, progress, force=force, known=self._known))
            self._asked.update(missing)   # kinds that bring their own image have no tag here
        return {kind: self._images[kind] for kind in kinds if kind in self._images}

    # looking ---------------------------------------------------------------

    def list_labs(self) -> list[LabSummary]:
        return [LabSummary(**entry) for entry in inspect.list_labs(self.client)]

    def lab_exists(self, lab: str) -> bool:
        return inspect.lab_exists(self.client, lab)

    def status(self, lab: str) -> list[NodeStatus]:
        return inspect.lab_status(self.client, lab)

    def node_kinds(self, lab: str) -> dict[str, str]:
        return {name: c.labels.get(LABEL_KIND, "") for name, c in lab_containers(self.client, lab).items()}

    def address_book(self, lab: str) -> dict[str, str]:
        book = {}
        for name, container in lab_containers(self.client, lab).items():
            for info in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
                for key in ("IPAddress", "GlobalIPv6Address"):   # both families of a dual-stack node
                    if info.get(key):
                        book[info[key]] = container.labels.get(LABEL_NODE, name)
        return book

    def logs(self, lab: str, node: str, follow: bool = False, tail: int | str = "all") -> Iterator[bytes]:
        return inspect.node_logs(self.client, lab, node, follow, tail)

    def read_file(self, lab: str, node: str, path: str) -> str:
        container = inspect.node_container(self.client, lab, node)
        try:
            with engine_call(f"reading {path} in node '{node}'"):
                stream, _ = container.get_archive(path)
                data = b"".join(stream)
        except RuntimeFailure as error:
            if isinstance(error.__cause__, docker.errors.NotFound):
                raise RuntimeFailure(f"node '{node}' has no file {path}") from None
            raise
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            return handle.read().decode(errors="replace") if handle else ""

    # acting ----------------------------------------------------------------

    def exec(self, lab: str, node: str, command: list[str]) -> ExecResult:
        container = inspect.node_container(self.client, lab, node)
        if container.status != "running":   # the engine would say it with the container's id
            raise RuntimeFailure(f"node '{node}' is {container.status}: start it first (lab start {node})")
        started = time.monotonic()
        with engine_call(f"running a command in node '{node}'"):
            result = run_command(container, command)
        return ExecResult(result.exit_code, result.stdout.decode(errors="replace"),
                          result.stderr.decode(errors="replace"), time.monotonic() - started)

    def attach(self, lab: str, node: str, command: list[str]) -> int:
        return inspect.exec_in_node(self.client, lab, node, command)

    def stop(self, lab: str, node: str) -> None:
        inspect.stop_node(self.client, lab, node)

    def start(self, lab: str, node: str) -> float:
        return inspect.start_node(self.client, lab, node)

    def capture(self, request: CaptureRequest, sink: BinaryIO) -> CaptureResult:
        return capture.capture(self.client, request, sink)

    def record(self, lab: str, filters: dict[str, str]) -> ContextManager[Recording]:
        return recording.record(self.client, lab, filters)

    def impair(self, lab: str, node: str, network: str, impairment: Impairment | None) -> Applied:
        return impair.impair(self.client, lab, node, network, impairment, lambda: self.netem_available(lab))

    def netem_available(self, lab: str) -> bool:
        if self._netem is None:   # one probe per backend: the kernel does not change under us
            self._netem = impair.probe_netem(self.client, lab)
        return self._netem

    def set_link(self, lab: str, node: str, network: str, up: bool) -> tuple[str, str]:
        return impair.set_link(self.client, lab, node, network, up)

    def run_isolated(self, kind: str, command: list[str], archive: bytes, into: str) -> str:
        image = self.build([kind])[kind]
        # The image tag is a hash of its contents: same key, same answer (`lab up` of an
        # unchanged lab runs BIND's pre-flight on the same zones each time: a container's
        # create, start, wait and removal, a second or more on a busy engine, kept instead).
        kept = isolated_runs_dir() / hashlib.sha256(repr((image, command, into)).encode() + archive).hexdigest()
        if kept.is_file():
            return kept.read_text()
        container = None
        try:
            with engine_call(f"running a throwaway container of the {kind} image"):
                container = self.client.containers.create(image, command[1:], entrypoint=command[:1],
                                                          network_mode="none", labels={ISOLATED_LABEL: kind})
                container.put_archive(into, archive)
                container.start()
                status = container.wait(timeout=120).get("StatusCode", 1)
                output = container.logs().decode(errors="replace")
        finally:
            if container is not None:
                remove_container(container)
        if status == 0:   # only a run that ended normally is kept (not one the engine cut short)
            _keep_text(kept, output)
        return output

    def build_browser(self, progress: Progress | None = None, force: bool = False) -> str:
        return ensure_helper_image(self.client, browser.BROWSER_FOLDER, progress, force)

    def run_browser(self, lab: str, node: str, arguments: list[str], files: dict[str, bytes],
                    progress: Progress | None = None, timeout: float = 180) -> ExecResult:
        return browser.run_browser(self.client, lab, node, arguments, files, progress, timeout)
