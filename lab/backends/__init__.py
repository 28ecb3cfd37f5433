"""Engines a lab runs on, behind one protocol (protocol.py). Only lab.backends.docker imports
the Docker SDK; `open_backend()` is the one place a command's engine connection is made."""

from __future__ import annotations

from lab.backends.protocol import Backend


def open_backend() -> Backend:
    """The backend of this machine's engine (Docker, through DOCKER_HOST or the local socket).

    Imported here, not at the top: commands that need no engine (validate, graph,
    export) never load the engine's SDK."""
    from lab.backends.docker.backend import DockerBackend
    from lab.backends.docker.engine import connect

    return DockerBackend(connect())


__all__ = ["Backend", "open_backend"]
