"""Build, or reuse, the image of every node kind.

Each folder under ``services/`` is one image. Its tag is ``lab/<folder>:<hash>``
where the hash covers the folder's files and the parent image, so an image is
rebuilt exactly when something that goes into it changed, and an unchanged lab
starts without touching the build machinery at all.

Image tree: ``lab/debian:bookworm`` (see base_image.py) -> ``lab/base`` (tools
and lab-init every node needs) -> one image per group of kinds.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from lab.backends.docker.base_image import BASE_TAG, ImageBuildError, ensure_base_image, image_exists
from lab.interrupts import settled
from lab.kinds import registry

# kind -> folder under services/, as each kind declares it (lab/kinds/; kinds that
# run the same software share one image, which keeps a cold build short).
IMAGE_FOR_KIND: dict[str, str] = {kind.name: kind.folder for kind in registry.all_kinds() if kind.folder}
BASE_FOLDER = "base"  # parent of every kind's image; not a kind itself
IMAGE_LABEL = "lab.image"  # value: the services/ folder an image was built from
MAX_PARALLEL_BUILDS = 2

__all__ = [
    "IMAGE_FOR_KIND", "IMAGE_LABEL", "ImageBuildError", "cache_dir", "content_hash",
    "KnownImages", "ensure_helper_image", "ensure_images", "ensure_lab_base", "ensure_wheelhouse", "folders_for", "image_tag",
    "service_files", "services_dir",
]  # fmt: skip

Progress = Callable[[str, str], None]

# Files that appear next to sources but never belong in an image (or its hash).
_IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".git"}
_IGNORED_SUFFIXES = {".pyc", ".pyo", ".swp"}


# --- where things are -------------------------------------------------------


def services_dir() -> Path:
    """The services/ folder: a sibling of the lab package, or LAB_SERVICES_DIR."""
    override = os.environ.get("LAB_SERVICES_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "services"


def cache_dir() -> Path:
    """Per-user cache (wheelhouses): LAB_CACHE_DIR, else $XDG_CACHE_HOME/lab."""
    override = os.environ.get("LAB_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "lab"


# --- content hashing (pure) ------------------------------------------------


def service_files(folder: Path) -> list[Path]:
    """Every file of a service folder that goes into its image, sorted."""
    files = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part in _IGNORED_DIRS for part in rel.parts) or path.suffix in _IGNORED_SUFFIXES:
            continue
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def content_hash(folder: Path, parent: str, extra: str = "") -> str:
    """First 12 hex digits of a sha256 over the folder's files and the parent.

    Paths and the executable bit count too: renaming a file or losing an
    entrypoint's +x changes what the image does.
    """
    digest = hashlib.sha256()
    for part in (f"parent={parent}", f"extra={extra}"):
        digest.update(part.encode() + b"\0")
    for path in service_files(folder):
        rel = path.relative_to(folder).as_posix()
        executable = "x" if path.stat().st_mode & 0o111 else "-"
        digest.update(f"{rel}\0{executable}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def image_tag(folder_name: str, parent: str, extra: str = "", root: Path | None = None) -> str:
    """The tag ``lab/<folder>:<hash>`` an image of services/<folder> gets."""
    folder = (root or services_dir()) / folder_name
    return f"lab/{folder_name}:{content_hash(folder, parent, extra)}"


def folders_for(kinds: Iterable[str]) -> list[str]:
    """The image folders the given kinds need, sorted; unknown kinds are an error."""
    unknown = sorted(set(kinds) - set(registry.names()))
    if unknown:
        raise ImageBuildError(
            f"no image for node kind(s) {', '.join(unknown)}; known kinds: "
            + ", ".join(sorted(registry.names()))
        )
    return sorted({registry.get(k).folder for k in kinds if registry.get(k).folder})


def _needs_wheelhouse(folder: str) -> bool:
    return any(kind.wheelhouse for kind in registry.all_kinds() if kind.folder == folder)


# --- the public entry points ------------------------------------------------


def ensure_images(
    client: docker.DockerClient,
    kinds: Iterable[str],
    progress: Progress | None = None,
    force: bool = False,
    known: KnownImages | None = None,
) -> dict[str, str]:
    """Return {kind: image tag} for every kind, building what is missing.

    ``progress(name, line)`` receives build output as it streams (``name`` is
    the services/ folder, or "debian" for the base root file system); it is
    called only when something is built or fetched, possibly from worker
    threads. ``force`` rebuilds the requested images without the layer cache
    (the Debian root is kept).
    """
    kinds = list(kinds)
    folders = folders_for(kinds)
    report = progress or (lambda _name, _line: None)
    known = known or KnownImages(client)
    base = ensure_lab_base(client, report, force=force, known=known)
    tags = {BASE_FOLDER: base}
    with ThreadPoolExecutor(MAX_PARALLEL_BUILDS, thread_name_prefix="lab-build") as pool:
        jobs = {name: pool.submit(_ensure_folder_image, client, name, base, report, force, known=known)
                for name in folders}
        # Waiting on every job before raising keeps no build running behind our back.
        settled(jobs.values())
        errors = []
        for name, job in jobs.items():
            try:
                tags[name] = job.result()
            except ImageBuildError as e:
                errors.append(e)
    if errors:
        raise errors[0] if len(errors) == 1 else ImageBuildError("\n\n".join(map(str, errors)))
    # kinds without a folder (service) bring their own image: own_images.py
    return {kind: tags[registry.get(kind).folder] for kind in kinds if registry.get(kind).folder}


def ensure_lab_base(client: docker.DockerClient, progress: Progress | None = None, force: bool = False,
                    known: KnownImages | None = None) -> str:
    """Return the tag of ``lab/base`` (tools + lab-init), building it if needed."""
    report = progress or (lambda _name, _line: None)
    known = known or KnownImages(client)
    debian_id = known.id_of(BASE_TAG)
    if debian_id is None:
        debian = ensure_base_image(client, report)
        try:
            debian_id = client.images.get(debian).id
        except docker.errors.DockerException as e:
            raise ImageBuildError(f"cannot inspect {debian}: {e}") from e
    return _ensure_folder_image(client, BASE_FOLDER, f"{BASE_TAG}@{debian_id}", report, force,
                                base_ref=BASE_TAG, known=known)


class KnownImages:
    """The engine's lab/* images and their tags, listed in one call: a warm `lab up` finds
    every image it needs there (instead of two or three calls per image)."""

    def __init__(self, client: docker.DockerClient):
        try:
            entries = client.api.images(filters={"reference": "lab/*"})
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            entries = []   # each image is then asked about on its own, as before
        self._ids = {tag: entry["Id"] for entry in entries for tag in entry.get("RepoTags") or []}

    def id_of(self, tag: str) -> str | None:
        return self._ids.get(tag)

    def point_latest(self, client: docker.DockerClient, name: str, tag: str) -> None:
        """lab/<name>:latest names tag's image (see tag_latest): one call, and only when
        another checkout (or an older one) moved it."""
        if self._ids.get(f"lab/{name}:latest") == self._ids[tag]:
            return
        try:
            client.api.tag(self._ids[tag], f"lab/{name}", "latest", force=True)
        except docker.errors.DockerException as e:
            raise ImageBuildError(f"could not tag {tag} as lab/{name}:latest: {e}") from e
        self._ids[f"lab/{name}:latest"] = self._ids[tag]


def ensure_helper_image(client: docker.DockerClient, folder: str, progress: Progress | None = None,
                        force: bool = False) -> str:
    """The image of a helper that is no node kind (services/browser: Chromium for `lab browse`),
    built FROM lab/base like the kinds' images and tagged by the same content hash."""
    report = progress or (lambda _name, _line: None)
    base = ensure_lab_base(client, report)
    return _ensure_folder_image(client, folder, base, report, force)


# --- one image ----------------------------------------------------------------


def _ensure_folder_image(
    client: docker.DockerClient,
    name: str,
    parent: str,
    report: Progress,
    force: bool,
    base_ref: str | None = None,
    known: KnownImages | None = None,
) -> str:
    """Reuse lab/<name>:<hash> if the engine has it, else build it."""
    folder = services_dir() / name
    if not (folder / "Dockerfile").is_file():
        raise ImageBuildError(f"{folder}/Dockerfile is missing (LAB_SERVICES_DIR={services_dir()})")
    extra = _wheel_target() if _needs_wheelhouse(name) else ""
    tag = f"lab/{name}:{content_hash(folder, parent, extra)}"
    if not force and known is not None and known.id_of(tag):
        known.point_latest(client, name, tag)
        return tag
    if not force and image_exists(client, tag):
        tag_latest(client, name, tag)
        return tag
    extras = {"wheels": ensure_wheelhouse(folder / "requirements.txt", report)} if _needs_wheelhouse(name) else {}
    buildargs = {"BASE": base_ref or parent}
    _build(client, name, tag, _context_tar(folder, extras), buildargs, report, nocache=force)
    return tag


def _context_tar(folder: Path, extra_dirs: dict[str, Path]) -> io.BytesIO:
    """The build context: the service folder plus extra directories (wheels/).

    Built in memory by us (not by the SDK) so the app's wheelhouse can live in
    the cache instead of being copied into the source tree.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in service_files(folder):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False, filter=_normalise)
        for arcname, directory in extra_dirs.items():
            tar.add(directory, arcname=arcname, filter=_normalise)
    buffer.seek(0)
    return buffer


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The host's owners and timestamps must not leak into (or vary) the image.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def _build(
    client: docker.DockerClient,
    name: str,
    tag: str,
    context: io.BytesIO,
    buildargs: dict[str, str],
    report: Progress,
    nocache: bool,
) -> None:
    report(name, f"building {tag}")
    tail: list[str] = []
    try:
        for line in _build_lines(client, tag, context, buildargs, name, nocache):
            tail = (tail + [line])[-20:]
            report(name, line)
    except ImageBuildError as e:
        raise ImageBuildError(f"building {tag} failed: {e}\nlast build output:\n" + "\n".join(tail)) from e
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise ImageBuildError(f"building {tag} failed: the engine said: {e}") from e
    if not image_exists(client, tag):
        raise ImageBuildError(f"building {tag} ended without an image; last output:\n" + "\n".join(tail))
    tag_latest(client, name, tag)
    report(name, f"built {tag}")


def tag_latest(client: docker.DockerClient, name: str, tag: str) -> None:
    """lab/<name>:latest always names the image this checkout uses: the exported compose file
    and people using the docker CLI rely on it."""
    try:
        client.images.get(tag).tag(f"lab/{name}", "latest")
    except docker.errors.DockerException as e:
        raise ImageBuildError(f"could not tag {tag} as lab/{name}:latest: {e}") from e


def _build_lines(
    client: docker.DockerClient,
    tag: str,
    context: io.BytesIO,
    buildargs: dict[str, str],
    name: str,
    nocache: bool,
) -> Iterator[str]:
    """Yield the build's output lines; raise ImageBuildError on a build error."""
    stream = client.api.build(
        fileobj=context,
        custom_context=True,
        tag=tag,
        buildargs=buildargs,
        labels={IMAGE_LABEL: name},
        rm=True,
        forcerm=True,
        nocache=nocache,
        pull=False,  # parents are local images; there may be no registry
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            raise ImageBuildError(str(chunk["error"]).strip())
        text = chunk.get("stream") or chunk.get("status") or ""
        for line in str(text).splitlines():
            if line.strip():
                yield line.rstrip()


# --- the app's wheelhouse -----------------------------------------------------


def _wheel_target() -> str:
    """The platform the app's wheels are for: Debian 12's CPython 3.11."""
    return f"cp311-manylinux-{_machine()}"


def _machine() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def ensure_wheelhouse(requirements: Path, progress: Progress | None = None) -> Path:
    """A directory of wheels satisfying ``requirements`` for the app image.

    Downloaded on the host (containers may not reach PyPI) once per
    requirements content, then kept in the cache. LAB_WHEELHOUSE points at a
    ready directory instead (air-gapped machines).
    """
    override = os.environ.get("LAB_WHEELHOUSE")
    if override:
        return Path(override)
    report = progress or (lambda _name, _line: None)
    key = hashlib.sha256(requirements.read_bytes() + _wheel_target().encode()).hexdigest()[:12]
    target = cache_dir() / "wheels" / key
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Download next to the target and rename: a half-finished download is
    # never mistaken for a wheelhouse, and parallel runs do not collide.
    scratch = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=target.parent))
    try:
        _pip_download(requirements, scratch, report)
        (scratch / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _pip_download(requirements: Path, dest: Path, report: Progress) -> None:
    machine = _machine()
    cmd = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
        # manylinux_2_28 and older tags all run on Debian 12 (glibc 2.36).
        "--platform", f"manylinux_2_28_{machine}", "--platform", f"manylinux2014_{machine}",
        "-d", str(dest), "-r", str(requirements),
    ]  # fmt: skip
    report(requirements.parent.name, f"downloading wheels for {requirements.name} on the host")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise ImageBuildError(
            "cannot download the app's Python wheels on the host (pip needs PyPI, or set "
            "LAB_WHEELHOUSE to a directory of cp311 manylinux wheels):\n" + tail
        )
