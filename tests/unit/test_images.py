"""Image mapping and content hashing: pure, no Docker engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.backends.docker import images
from lab.backends.docker.images import IMAGE_FOR_KIND, ImageBuildError, content_hash, folders_for, image_tag

ALL_KINDS = {
    "client", "router", "firewall", "dns-root", "dns-tld", "dns-auth",
    "dns-resolver", "load-balancer", "web", "app", "database",
}  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    (folder / "bin").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / "bin" / "start").write_text("#!/bin/sh\nexec sleep infinity\n")
    return folder


def test_every_kind_has_an_image_folder_with_a_dockerfile():
    assert set(IMAGE_FOR_KIND) == ALL_KINDS
    for kind, folder in IMAGE_FOR_KIND.items():
        assert (images.services_dir() / folder / "Dockerfile").is_file(), kind
    assert (images.services_dir() / images.BASE_FOLDER / "Dockerfile").is_file()


def test_every_image_but_the_base_builds_on_the_base_arg():
    for folder in set(IMAGE_FOR_KIND.values()):
        dockerfile = (images.services_dir() / folder / "Dockerfile").read_text()
        assert "ARG BASE=" in dockerfile and "FROM ${BASE}" in dockerfile, folder


def test_hash_is_stable_when_nothing_changes(service: Path):
    assert content_hash(service, "parent") == content_hash(service, "parent")
    assert len(content_hash(service, "parent")) == 12


def test_hash_changes_when_a_file_changes(service: Path):
    before = content_hash(service, "parent")
    (service / "bin" / "start").write_text("#!/bin/sh\nexec sleep 1\n")
    assert content_hash(service, "parent") != before


def test_hash_changes_when_a_file_is_added_or_renamed(service: Path):
    before = content_hash(service, "parent")
    (service / "extra.conf").write_text("x")
    added = content_hash(service, "parent")
    assert added != before
    (service / "extra.conf").rename(service / "other.conf")
    assert content_hash(service, "parent") not in (before, added)


def test_hash_changes_with_the_executable_bit(service: Path):
    start = service / "bin" / "start"
    start.chmod(0o644)
    before = content_hash(service, "parent")
    start.chmod(0o755)
    assert content_hash(service, "parent") != before


def test_hash_changes_with_the_parent_and_the_extra(service: Path):
    base = content_hash(service, "parent")
    assert content_hash(service, "other-parent") != base
    assert content_hash(service, "parent", extra="wheels") != base


def test_hash_ignores_python_caches(service: Path):
    before = content_hash(service, "parent")
    (service / "__pycache__").mkdir()
    (service / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00")
    (service / "stray.pyc").write_bytes(b"\x00")
    assert content_hash(service, "parent") == before


def test_hash_does_not_depend_on_where_the_folder_is(service: Path, tmp_path: Path):
    copy = tmp_path / "elsewhere" / "demo"
    shutil.copytree(service, copy)
    assert content_hash(copy, "parent") == content_hash(service, "parent")


def test_image_tag_names_the_folder(service: Path):
    tag = image_tag("demo", "parent", root=service.parent)
    assert tag == f"lab/demo:{content_hash(service, 'parent')}"


def test_services_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LAB_SERVICES_DIR", str(tmp_path))
    assert images.services_dir() == tmp_path


def test_kinds_sharing_software_share_a_folder():
    assert folders_for(["router", "firewall"]) == ["router"]
    assert folders_for(["dns-root", "dns-tld", "dns-auth"]) == ["dns"]


def test_unknown_kind_is_a_lab_error():
    with pytest.raises(ImageBuildError, match="no image for node kind.*spaceship"):
        folders_for(["client", "spaceship"])


def test_missing_debootstrap_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch):
    from lab.errors import LabError
    from lab.backends.docker.base_image import bootstrap_base_image

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ImageBuildError) as caught:
        bootstrap_base_image(client=None)  # fails before it needs an engine
    assert isinstance(caught.value, LabError)
    assert "apt-get install debootstrap" in str(caught.value)
    assert "debian:bookworm-slim" in str(caught.value)
