"""The images of nodes that bring their own (kind service): found locally or built, never pulled.

Everything here runs before `lab up` creates anything, so a missing image or a
failed build leaves the engine untouched. An image must carry the lab's start-up
(lab-entrypoint, from lab/base): it is what gives a node the lab's routes,
resolver and seal before its own command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import docker
import docker.errors
import requests.exceptions

from lab.backends.docker.base_image import ImageBuildError, image_exists
from lab.backends.docker.images import _build, _context_tar, content_hash
from lab.plan.model import ContainerPlan, Plan, built_image_name

LAB_STARTUP = "/usr/local/bin/lab-entrypoint"
LAB_BASE = "lab/base:latest"
Progress = Callable[[str, str], None]


def _local_image(client: docker.DockerClient, reference: str, node: str):
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise ImageBuildError(
            f"node '{node}': image '{reference}' is not on this Docker engine, and the lab never pulls "
            f"images: build it first (docker build -t {reference} FOLDER), or give the node "
            "'build: FOLDER' instead of 'image:'") from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as error:
        raise ImageBuildError(f"node '{node}': cannot ask the engine about image '{reference}': {error}") from error


def _check_startup(image, reference: str, node: str) -> None:
    entrypoint = (image.attrs.get("Config") or {}).get("Entrypoint") or []
    if LAB_STARTUP not in entrypoint:
        shown = " ".join(entrypoint) or "none"
        raise ImageBuildError(
            f"node '{node}': image '{reference}' does not start with the lab's start-up (its entrypoint "
            f"is {shown}), so it would run without the lab's routes, resolver and seal: build it "
            f"FROM lab/base:latest and set CMD (or the node's command:), not ENTRYPOINT")


def _build_folder(client: docker.DockerClient, lab: str, plan: ContainerPlan, report: Progress) -> str:
    folder = Path(plan.build)
    if not (folder / "Dockerfile").is_file():
        raise ImageBuildError(f"node '{plan.node}': {folder} has no Dockerfile (build: is a folder "
                              "with a Dockerfile, relative to the topology file)")
    name = built_image_name(lab, plan.node)
    # The folder's files and the lab base it most likely starts FROM: either changing means a new image.
    base = _image_id(client, LAB_BASE) or "no lab base"
    tag = f"{name}:{content_hash(folder, base)}"
    if not image_exists(client, tag):
        _build(client, name.removeprefix("lab/"), tag, _context_tar(folder, {}), {}, report, nocache=False)
    return tag


def _image_id(client: docker.DockerClient, reference: str) -> str | None:
    try:
        return client.images.get(reference).id
    except docker.errors.ImageNotFound:
        return None


def ensure_own_images(client: docker.DockerClient, plan: Plan, progress: Progress | None = None) -> dict[str, str]:
    """{container name: image id} for every node with its own image or Dockerfile folder.
    The id, not the tag: a rebuilt image under the same tag makes `lab up` recreate the node."""
    report = progress or (lambda _name, _line: None)
    found: dict[tuple, str] = {}
    images: dict[str, str] = {}
    for container in plan.containers:
        if not (container.image or container.build):
            continue
        key = (container.image, container.build)
        if key not in found:   # replicas share one image, built once
            reference = container.image or _build_folder(client, plan.lab, container, report)
            image = _local_image(client, reference, container.node)
            _check_startup(image, reference, container.node)
            found[key] = image.id
        images[container.name] = found[key]
    return images
