"""app: the ready-made FastAPI shop, behind the load balancer, using the database."""

from __future__ import annotations

from lab.kinds.registry import HTTP_UPSTREAM, Kind, register
from lab.plan.model import Probe
from lab.plan.web import render_app
from lab.topology import Instance, Lab


def _database(lab: Lab, instance: Instance) -> list[Instance]:
    # It connects at start (and its readiness says so): the database must be up first.
    database = lab.spec.nodes[instance.node].database
    return list(lab.instances_of(database)) if database else []


KIND = register(Kind(
    name="app", folder="app", stage=2,
    # The request only once the app listens (its marker: services/app/app/serve.py), so a probe
    # tried while it loads costs a shell's test, not a curl.
    probe=Probe(("sh", "-c", "test -e /run/lab/app/serving && "
                 "curl -fsS -o /dev/null http://127.0.0.1:{port}/healthz"),
                90, "GET /healthz answered 200"),
    probe_fields=lambda spec: {"port": spec.port},
    env=lambda spec: {"LAB_APP_PORT": str(spec.port)},
    http_port=lambda spec: spec.port, database_of=lambda spec: spec.database,
    render=render_app, needs=_database, roles=frozenset({HTTP_UPSTREAM}),
    wheelhouse=True,   # FastAPI and friends: wheels built on the host (no PyPI in containers)
    colour="#edc948",
))
