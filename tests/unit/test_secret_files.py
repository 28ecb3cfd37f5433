"""Secrets on disk: every file `lab export compose` and the lab state write is walked; any
file holding a private key or the database password must be 0600, its directories 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _secrets_of(state: Path) -> list[str]:
    """What counts as secret, read from the state itself: every password, every key."""
    values = [p.read_text().strip() for p in state.rglob("*.password")]
    return values + ["PRIVATE KEY"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _walk(top: Path):
    for directory, _dirs, files in os.walk(top):
        yield Path(directory), [Path(directory) / f for f in files]


@pytest.fixture
def exported(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("LAB_STATE_DIR", str(state))
    monkeypatch.chdir(tmp_path)
    os.umask(0o022)   # a usual umask: the code must not rely on a strict one
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["export", "compose", str(ROOT / "topology" / "default.yaml"),
                                       "-o", str(out / "compose.yaml")])
    assert result.exit_code == 0, result.output
    return state, out


def test_every_secret_the_export_writes_is_0600_under_a_0700_lab_directory(exported):
    state, out = exported
    secrets = _secrets_of(state)
    assert len(secrets) >= 2   # the database's password and the key marker
    holding = []
    for directory, files in _walk(out):
        for file in files:
            if any(secret in file.read_text() for secret in secrets):
                holding.append(file)
                assert _mode(file) == 0o600, (file, oct(_mode(file)))
    names = {str(f.relative_to(out)) for f in holding}
    # the key of the lb, the password of the database and of each app: found by content
    assert "compose.d/shop/lb/tls/server.key" in names and "compose.d/shop/db/db/password" in names
    assert {f"compose.d/shop/app-{i}/db/password" for i in (1, 2, 3)} <= names
    # other users of the host cannot enter the lab's files; inside a container each node's
    # directory is /lab, which its non-root services must traverse
    assert _mode(out / "compose.d" / "shop") == 0o700
    assert _mode(out / "compose.d" / "shop" / "app-1" / "db") == 0o755


def test_files_without_secrets_stay_readable(exported):
    _state, out = exported
    assert _mode(out / "compose.yaml") == 0o644
    assert _mode(out / "compose.d" / "shop" / "lb" / "etc" / "nginx.conf") == 0o644


def test_every_secret_in_the_state_dir_is_0600_and_every_directory_0700(exported):
    state, _out = exported
    secrets = _secrets_of(state)
    for directory, files in _walk(state / "shop"):
        assert _mode(directory) == 0o700, directory
        for file in files:
            if any(secret in file.read_text() for secret in secrets):
                assert _mode(file) == 0o600, file
            else:
                assert file.suffix == ".crt", file   # only certificates are public
