"""Rendering pages in headless Chromium (Debian's `chromium`), as a person would see them.

Skipped with the reason where Chromium is missing, except in CI (CI=true),
where scripts/setup.sh installs it and a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Rendered:
    dom: str
    screenshot: Path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Debian's chromium (scripts/setup.sh installs it)")
        pytest.skip("no chromium on this machine: apt-get install chromium")
    return path


@pytest.fixture
def render_page(chromium_path, tmp_path):
    """Open a local HTML file headless: its DOM after scripts ran, and a PNG screenshot."""

    def render(page: Path, width: int = 2400, height: int = 1200) -> Rendered:
        profile = tmp_path / "profile"
        base = [chromium_path, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        url = page.resolve().as_uri()
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / f"{page.stem}.png"
        subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=120)
        return Rendered(dom, shot)

    return render
