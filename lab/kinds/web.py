"""web: nginx serving the shop's static page, styles, script and image, beside the app servers."""

from __future__ import annotations

from lab.kinds.registry import HTTP_UPSTREAM, Kind, register
from lab.plan.model import Probe
from lab.plan.static_web import render_web

KIND = register(Kind(
    name="web", folder="web", stage=2,
    # lab-listening first: a curl costs 6 ms of CPU a try, and nginx starts after lab-init.
    probe=Probe(("sh", "-c", "lab-listening tcp {port} && "
                 "curl -fsS -o /dev/null http://127.0.0.1:{port}/.lab/ready"),
                60, "nginx answered on its port"),
    probe_fields=lambda spec: {"port": spec.port},
    http_port=lambda spec: spec.port,
    render=render_web, roles=frozenset({HTTP_UPSTREAM}),
    colour="#76b7b2",
))
