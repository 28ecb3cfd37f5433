"""Engines a lab runs on, behind one protocol (protocol.py). Only lab.backends.docker imports
the Docker SDK and only lab.backends.kubernetes the Kubernetes client; `open_backend()` is the
one place a command's engine connection is made."""

from __future__ import annotations

import os

from lab.backends.protocol import Backend
from lab.errors import UsageError

BACKENDS = ("docker", "kubernetes")
BACKEND_VARIABLE = "LAB_BACKEND"


def backend_name(name: str | None = None) -> str:
    """The one rule: the backend named on the command line, else LAB_BACKEND, else docker."""
    chosen = (name or os.environ.get(BACKEND_VARIABLE) or "docker").strip().lower()
    if chosen not in BACKENDS:
        source = "--backend" if name else BACKEND_VARIABLE
        raise UsageError(f"unknown backend '{chosen}' ({source}): choose {' or '.join(BACKENDS)}")
    return chosen


def open_backend(name: str | None = None, context: str | None = None, namespace: str | None = None,
                 links: str = "bridge") -> Backend:
    """The backend a command runs on (see backend_name), connected.

    Imported here, not at the top: commands that need no engine (validate, graph,
    export) never load an engine's SDK, and the Kubernetes client is optional.
    context, namespace and links matter only to the kubernetes backend (the kubeconfig's
    context; the namespace a new lab goes into; how its networks span cluster nodes)."""
    if backend_name(name) == "kubernetes":
        return _kubernetes(context, namespace, links)
    if links != "bridge":
        raise UsageError(f"--links {links} joins a lab network across a cluster's nodes: it is for the "
                         "kubernetes backend (on docker a lab runs on one engine)")
    from lab.backends.docker.backend import DockerBackend
    from lab.backends.docker.engine import connect

    return DockerBackend(connect())


def _kubernetes(context: str | None, namespace: str | None, links: str) -> Backend:
    try:
        from lab.backends.kubernetes.api import connect
        from lab.backends.kubernetes.backend import KubernetesBackend
    except ImportError as error:
        if error.name and error.name.split(".")[0] == "kubernetes":
            raise UsageError("the kubernetes backend needs the Kubernetes client: "
                             "pip install 'lab[kubernetes]' (or pip install kubernetes)") from None
        raise
    return KubernetesBackend(connect(context), namespace, links=links)


__all__ = ["Backend", "open_backend", "backend_name"]
