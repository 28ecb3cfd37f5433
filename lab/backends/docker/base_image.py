"""The Debian 12 image every lab image is built on.

Three ways to get it, cheapest first:
1. an image already tagged ``lab/debian:bookworm`` (made by an earlier run);
2. pulling ``debian:bookworm-slim`` from a registry (the normal path on a
   connected machine);
3. building a root file system with ``debootstrap`` and importing it (the
   air-gapped path: only a Debian package mirror is needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from lab.errors import LabError

BASE_TAG = "lab/debian:bookworm"
UPSTREAM_IMAGE = "debian:bookworm-slim"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# A pull that cannot reach a registry normally fails in milliseconds, but a
# black-holed network can hang; we stop waiting after this many seconds.
PULL_TIMEOUT_S = float(os.environ.get("LAB_PULL_TIMEOUT", "60"))

Progress = Callable[[str, str], None]
_STEP = "debian"  # the name progress lines are reported under


class ImageBuildError(LabError):
    """An image could not be made (re-exported by lab.backends.docker.images)."""


class BaseImageError(ImageBuildError):
    """The Debian base image could not be found, pulled or made."""


def ensure_base_image(client: docker.DockerClient, progress: Progress | None = None) -> str:
    """Return the tag of a local Debian 12 image, obtaining it if needed."""
    report = progress or (lambda _step, _line: None)
    if image_exists(client, BASE_TAG):
        return BASE_TAG
    if _try_pull(client, report):
        return BASE_TAG
    bootstrap_base_image(client, report)
    return BASE_TAG


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    """Whether the engine has an image with this tag (engine errors become BaseImageError)."""
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        raise BaseImageError(f"cannot ask the Docker engine about image {tag}: {e}") from e
    return True


def _try_pull(client: docker.DockerClient, report: Progress) -> bool:
    """Pull the upstream slim image; any failure just means 'no registry'."""
    report(_STEP, f"pulling {UPSTREAM_IMAGE}")
    outcome: dict[str, object] = {}

    def pull() -> None:
        try:
            outcome["image"] = client.images.pull(UPSTREAM_IMAGE)
        except Exception as e:  # noqa: BLE001 - every failure means the same here
            outcome["error"] = e

    # The SDK cannot cancel a pull, so it runs in a daemon thread we stop
    # waiting for; a late success is harmless.
    worker = threading.Thread(target=pull, daemon=True)
    worker.start()
    worker.join(PULL_TIMEOUT_S)
    image = outcome.get("image")
    if image is None:
        reason = outcome.get("error", f"no answer in {PULL_TIMEOUT_S:.0f} s")
        report(_STEP, f"no registry ({_first_line(reason)}); making the base image locally")
        return False
    image.tag(BASE_TAG)
    report(_STEP, f"tagged {UPSTREAM_IMAGE} as {BASE_TAG}")
    return True


def bootstrap_base_image(client: docker.DockerClient, progress: Progress | None = None) -> str:
    """Make ``lab/debian:bookworm`` with debootstrap and import it."""
    report = progress or (lambda _step, _line: None)
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BaseImageError(
            f"cannot make the Debian base image: debootstrap is not installed and "
            f"{UPSTREAM_IMAGE} cannot be pulled. Fix: apt-get install debootstrap, "
            f"or make {UPSTREAM_IMAGE} available to the engine (docker load / a registry)."
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            "cannot make the Debian base image: debootstrap needs root. "
            f"Run once as root, or make {UPSTREAM_IMAGE} available to the engine."
        )
    workdir = Path(tempfile.mkdtemp(prefix="lab-rootfs-", dir=_scratch_dir()))
    rootfs = workdir / "rootfs"
    try:
        _run_debootstrap(debootstrap, rootfs, report)
        _trim_rootfs(rootfs)
        _import_rootfs(client, rootfs, report)
    finally:
        _remove_rootfs(workdir)
    return BASE_TAG


def _scratch_dir() -> str:
    # /var/tmp is on disk; /tmp may be a small tmpfs and the tree is ~200 MB.
    return os.environ.get("LAB_SCRATCH_DIR") or ("/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir())


def _run_debootstrap(debootstrap: str, rootfs: Path, report: Progress) -> None:
    mirror = os.environ.get("LAB_DEBIAN_MIRROR") or DEFAULT_MIRROR
    cmd = [debootstrap, "--variant=minbase", "bookworm", str(rootfs), mirror]
    report(_STEP, "running " + " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            report(_STEP, line)
    if proc.returncode != 0:
        raise BaseImageError(
            f"debootstrap failed (exit {proc.returncode}) using mirror {mirror}; "
            "set LAB_DEBIAN_MIRROR to a reachable Debian mirror. Last lines:\n" + "\n".join(tail)
        )


def _trim_rootfs(rootfs: Path) -> None:
    """Drop downloaded packages and indexes: builds run apt-get update anyway."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in rootfs.glob(pattern):
            path.unlink(missing_ok=True)


def _import_rootfs(client: docker.DockerClient, rootfs: Path, report: Progress) -> None:
    report(_STEP, f"importing {rootfs} as {BASE_TAG}")
    repository, tag = BASE_TAG.split(":")
    with subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as tar:
        try:
            client.api.import_image_from_data(
                _chunks(tar.stdout),
                repository=repository,
                tag=tag,
                changes=['CMD ["/bin/bash"]', "ENV LANG=C.UTF-8"],
            )
        except docker.errors.APIError as e:
            tar.kill()
            raise BaseImageError(f"the engine refused the Debian root file system: {e}") from e
        stderr = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
    if tar.returncode != 0:
        raise BaseImageError(f"tar of {rootfs} failed: {stderr.strip()}")
    if not image_exists(client, BASE_TAG):
        raise BaseImageError(f"import finished but {BASE_TAG} is not in the engine")
    report(_STEP, f"imported {BASE_TAG}")


def _chunks(stream, size: int = 1 << 20) -> Iterator[bytes]:
    # A generator makes requests send the body chunked, without a temp tar.
    while block := stream.read(size):
        yield block


def _remove_rootfs(workdir: Path) -> None:
    # debootstrap mounts /proc and /sys inside the tree; a failed run can leave
    # them mounted, and rmtree would then walk into the host's /proc.
    for mountpoint in sorted(_mounts_under(workdir), reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False)
    shutil.rmtree(workdir, ignore_errors=True)


def _mounts_under(workdir: Path) -> list[str]:
    prefix = str(workdir.resolve()) + "/"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    return [f.split()[1] for f in lines if len(f.split()) > 1 and f.split()[1].startswith(prefix)]


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
