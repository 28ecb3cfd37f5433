"""Kind renderers: each service kind's module turns the lab into that node's config files.

A renderer is `render(lab, instance, state) -> Rendered`. Modules register
theirs in a RENDERERS mapping (kind -> function); kinds without one get only
the common files (env, routes, resolv.conf).
"""

from __future__ import annotations

from typing import Callable

from lab.plan import dns, firewall, web
from lab.plan.model import LabState, Rendered
from lab.topology import Instance, Lab

Renderer = Callable[[Lab, Instance, LabState], Rendered]

RENDERERS: dict[str, Renderer] = {**dns.RENDERERS, **web.RENDERERS, **firewall.RENDERERS}


def render_kind(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    renderer = RENDERERS.get(instance.kind)
    return renderer(lab, instance, state) if renderer else Rendered()
