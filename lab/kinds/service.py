"""service: your own program in the lab, from a local image or a Dockerfile folder.

It runs behind the lab's start-up (its image is built FROM lab/base:latest), so it gets
the lab's routes, resolver and seal like every node, then the image's command (or
`command:`). It can be a load balancer upstream (on its first port), a DNS record
target, a firewall rule endpoint, a check target and a step of a trace. With
`database:`, the database's URL is handed over in the file /lab/db/url
($LAB_DATABASE_URL_FILE), never in the environment.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from lab.kinds.registry import HTTP_UPSTREAM, Kind, OwnImage, register
from lab.plan.model import LabState, Probe, Rendered
from lab.plan.web import DB_PORT, database_files
from lab.topology import Instance, Lab

INIT_DONE = ("test", "-e", "/run/lab/init-done")   # written by lab-init: routes and resolver in place
URL_FILE = "db/url"


def _probe(spec) -> Probe:
    ready = spec.ready
    port = spec.ports[0] if spec.ports else None
    timeout = ready.timeout if ready else 60
    if ready and ready.http is not None:
        port = port or 80
        return Probe(("curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{port}{ready.http}"), timeout,
                     f"GET {ready.http} on port {port} answered 2xx")
    if ready and ready.command is not None:
        return Probe(("sh", "-c", ready.command), timeout, f"'{ready.command}' exited 0")
    if ready and ready.tcp is not None:
        port = ready.tcp
    if port is not None:
        return Probe(("nc", "-z", "127.0.0.1", str(port)), timeout, f"port {port} accepts connections")
    return Probe(INIT_DONE, timeout, "the lab's start-up finished (no port or probe given)")


def _env(spec) -> dict[str, str]:
    # /lab/env is read by a shell (lab-entrypoint): quote what a shell would split
    values = {name: shlex.quote(value) for name, value in spec.env.items()}
    if spec.ports:
        values["LAB_SERVICE_PORT"] = str(spec.ports[0])
    if spec.database:
        values["LAB_DATABASE_URL_FILE"] = f"/lab/{URL_FILE}"
    return values


def _own_image(spec, topology_folder: str) -> OwnImage:
    if spec.image is not None:
        return OwnImage(image=spec.image)
    return OwnImage(build=str((Path(topology_folder) / spec.build).resolve()))


def _render(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    spec = lab.spec.nodes[instance.node]
    if spec.database is None:
        return Rendered()
    files = database_files(lab, spec.database, state)
    user, password = files["db/user"].strip(), files["db/password"].strip()
    host, name = files["db/host"].strip(), files["db/name"].strip()
    url = f"postgresql://{user}:{password}@{host}:{DB_PORT}/{name}\n"
    return Rendered(files={**files, URL_FILE: url})


def _database(lab: Lab, instance: Instance) -> list[Instance]:
    database = lab.spec.nodes[instance.node].database
    return list(lab.instances_of(database)) if database else []


KIND = register(Kind(
    name="service", folder=None, stage=2,
    probe=Probe(INIT_DONE, 60, "the lab's start-up finished"), node_probe=_probe,
    env=_env, http_port=lambda spec: spec.ports[0] if spec.ports else 80,
    database_of=lambda spec: spec.database, own_image=_own_image,
    command=lambda spec: tuple(spec.command) if spec.command is not None else None,
    render=_render, needs=_database, roles=frozenset({HTTP_UPSTREAM}),
    colour="#ff9da7",
))

__all__ = ["KIND", "URL_FILE"]
