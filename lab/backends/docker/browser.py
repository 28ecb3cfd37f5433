"""The browser helper of `lab browse`: headless Chromium inside a client node's network namespace.

Chromium is not in the client image (an idle client stays a few MB and builds in seconds): a
short-lived helper of services/browser joins the node's namespace (`container:<node>`), so
the browser has the node's addresses and routes, and `lab browse` hands it the node's
resolv.conf and the lab CA as files. The helper carries the lab's label and is removed
by the code that made it whatever happens (an interrupt too); `lab down` removes a leftover.
"""

from __future__ import annotations

import io
import tarfile
import time

import docker

from lab.backends.docker.engine import engine_call
from lab.backends.docker.helpers import namespace_helper
from lab.backends.docker.images import ensure_helper_image
from lab.backends.docker.inspect import node_container
from lab.backends.protocol import ExecResult, Progress
from lab.errors import RuntimeFailure

BROWSER_FOLDER = "browser"       # services/browser
BROWSER_ROLE = "browser"
INBOX = "/lab-browse"            # services/browser/bin/lab-browse reads its files here
START = 'exec /usr/local/bin/lab-browse "$@"'


def _archive(files: dict[str, bytes]) -> bytes:
    """A tar of the folder INBOX holding files (name -> content), for put_archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(INBOX.strip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, content in files.items():
            info = tarfile.TarInfo(f"{INBOX.strip('/')}/{name}")
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def run_browser(client: docker.DockerClient, lab: str, node: str, arguments: list[str], files: dict[str, bytes],
                progress: Progress | None = None, timeout: float = 180) -> ExecResult:
    container = node_container(client, lab, node)
    if container.status != "running":
        raise RuntimeFailure(f"node '{node}' is {container.status}: start it first (lab start {node})")
    image = ensure_helper_image(client, BROWSER_FOLDER, progress)
    started = time.monotonic()
    with namespace_helper(client, lab, BROWSER_ROLE, image, START, f"container:{container.id}", [],
                          arguments=arguments, archive=("/", _archive(files))) as (helper, _):
        with engine_call(f"running the browser in node '{node}'"):
            try:
                code = helper.wait(timeout=timeout).get("StatusCode", 1)
            except Exception as error:   # the engine's read timed out: the load hangs
                if "timed out" not in str(error).lower():
                    raise
                raise RuntimeFailure(f"the browser in node '{node}' did not finish within {timeout:g} s") from None
            stdout = helper.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = helper.logs(stdout=False, stderr=True).decode(errors="replace")
    return ExecResult(code, stdout, stderr, time.monotonic() - started)
