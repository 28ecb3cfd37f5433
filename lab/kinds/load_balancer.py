"""load-balancer: nginx with the lab CA's certificate for every name pointing at it."""

from __future__ import annotations

from lab.kinds.registry import HTTP_BALANCER, LAB_CA, TLS_CERTIFICATE, Kind, register
from lab.plan.model import Probe
from lab.plan.nginx import render_load_balancer
from lab.topology import Instance, Lab


def _nothing(lab: Lab, instance: Instance) -> list[Instance]:
    # nginx starts without its upstreams (their addresses are in its config; it picks one per
    # request) and its probe never goes upstream, so it starts beside the apps, not after them.
    # `lab up` still ends only once every node is ready: no request reaches it before they are.
    return []


KIND = register(Kind(
    name="load-balancer", folder="load-balancer", stage=3,
    # lab-listening first: `nginx -t` and a TLS curl cost 20 ms of CPU a try, and nginx starts
    # after lab-init.
    probe=Probe(("sh", "-c", "lab-listening tcp 443 && nginx -t -q -c /lab/etc/nginx.conf && "
                 "curl -sfk -o /dev/null https://127.0.0.1/.lab/ready"),
                60, "nginx -t passed and HTTPS on port 443 answered (by nginx itself)"),
    secrets=frozenset({LAB_CA, TLS_CERTIFICATE}),
    render=render_load_balancer, needs=_nothing, roles=frozenset({HTTP_BALANCER}),
    colour="#f28e2b",
))
