"""What routers and firewalls share: one image, NET_ADMIN, forwarding, rules loaded at start."""

from __future__ import annotations

import dataclasses

from lab.plan import firewall as rules
from lab.plan.frr import render_frr
from lab.plan.model import LabState, Probe, Rendered
from lab.topology import Instance, Lab

# services/router/lab-firewall-load touches this file once the rules are in
RULES_LOADED = ("test", "-e", "/run/lab/rules-loaded")
FOLDER = "router"
STAGE = 0
CAPABILITIES = ("NET_ADMIN",)
FRR_CAPABILITIES = ("SYS_ADMIN",)


def render(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    """Firewall rules (live), plus FRR's files for a router in an autonomous system."""
    rendered = rules.render(lab, instance, state)
    frr = render_frr(lab, instance)
    # FRR's daemons refuse to start without cap_sys_admin (they ask for it at start,
    # to switch network namespaces): only routers that run FRR get it.
    return dataclasses.replace(rendered, files={**rendered.files, **frr},
                               capabilities=FRR_CAPABILITIES if frr else ())


def rules_loaded(what: str) -> Probe:
    return Probe(RULES_LOADED, 30, what)
