"""The one rule that picks a backend (lab.backends.backend_name): --backend, else LAB_BACKEND, else docker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab.backends import backend_name
from lab.errors import UsageError


def test_the_command_line_beats_the_environment_which_beats_the_default(monkeypatch):
    monkeypatch.delenv("LAB_BACKEND", raising=False)
    assert backend_name() == "docker"
    monkeypatch.setenv("LAB_BACKEND", "Kubernetes ")
    assert backend_name() == "kubernetes"
    assert backend_name("docker") == "docker"


@pytest.mark.parametrize("given, env, source", [("k8s", None, "--backend"), (None, "podman", "LAB_BACKEND")])
def test_an_unknown_backend_is_refused_naming_where_it_came_from(monkeypatch, given, env, source):
    monkeypatch.delenv("LAB_BACKEND", raising=False)
    if env:
        monkeypatch.setenv("LAB_BACKEND", env)
    with pytest.raises(UsageError, match=rf"unknown backend '{given or env}' \({source}\): choose docker or "
                                         "kubernetes"):
        backend_name(given)


def test_commands_on_docker_never_load_the_kubernetes_client():
    """The client is an optional extra: importing the CLI and choosing docker must not need it."""
    code = ("import sys, lab.cli, lab.backends as b; b.backend_name(); "
            "print(any(m == 'kubernetes' or m.startswith('kubernetes.') for m in sys.modules))")
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert seen.stdout.strip() == "False"


def test_the_kubernetes_backend_without_its_client_names_the_extra_to_install():
    code = ("import os, sys; sys.modules['kubernetes'] = None; os.environ['LAB_BACKEND'] = 'kubernetes'; "
            "sys.argv = ['lab', 'ls']; from lab.cli import main; main()")
    seen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert seen.returncode == 2
    assert seen.stderr.strip() == ("the kubernetes backend needs the Kubernetes client: "
                                   "pip install 'lab[kubernetes]' (or pip install kubernetes)")
