"""How a node's /lab files get into its container.

Putting an archive into a container costs the engine about 44 ms of CPU (Docker 20.10
re-executes itself to unpack every archive), paid by every node of a lab on a machine whose
cores the starting nodes share. A node of a lab image instead gets its files in its
creation's environment (LAB_FILES: a tar, base64), and lab-entrypoint unpacks them into
/lab at its first start (a restart keeps /lab as the node left it: live files may have been
changed in place since) and unsets the variable, so no process of the node inherits it.

Secrets (SECRET_FILES: passwords, private keys) never go in the environment, which
`docker inspect` shows: they still go by archive, as does everything of a node whose image
is the user's own (it has no lab-entrypoint to unpack them; its routes and seals are in its
environment too, where the route helper reads them: the creation is the one record of them
that nothing in the node can change).
"""

from __future__ import annotations

import base64
import io
import tarfile
import time
from typing import Mapping

from lab.plan.model import ContainerPlan
from lab.plan.seal import SEAL6_FILE, SEAL_FILE
from lab.plan.web import SECRET_FILES
from lab.backends.docker.ready_report import reports_ready

FILES_ENV = "LAB_FILES"   # unpacked by services/base/bin/lab-entrypoint
# What the route helper installs: read back from the creation, never from the node's /lab,
# which a node's own programs could have changed (netns.py).
ROUTE_FILES = ("routes", SEAL_FILE, SEAL6_FILE)


def files_tar(files: Mapping[str, str]) -> bytes:
    """A tar of files (path under /lab -> content), rooted at / (its members are lab/...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo("lab")
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, time.time()
        tar.addfile(directory)
        for path, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(f"lab/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, time.time()
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def split_delivery(plan: ContainerPlan, files: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(files for the environment, files for an archive)."""
    if not reports_ready(plan):   # the user's own image: no lab-entrypoint, so all by archive,
        # and its routes and seals in its environment too, for the route helper to read back.
        return {path: files[path] for path in ROUTE_FILES if path in files}, dict(files)
    by_env = {path: content for path, content in files.items() if path not in SECRET_FILES}
    return by_env, {path: content for path, content in files.items() if path in SECRET_FILES}


def environment_value(files: Mapping[str, str]) -> str:
    return base64.b64encode(files_tar(files)).decode()


def files_from_environment(container) -> dict[str, str] | None:
    """The /lab files a container was created with in its environment (None: it has none),
    from its inspected configuration."""
    for entry in (container.attrs.get("Config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name == FILES_ENV:
            return _untar(base64.b64decode(value))
    return None


def _untar(data: bytes) -> dict[str, str]:
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name.removeprefix("lab/")] = handle.read().decode()
    return files
