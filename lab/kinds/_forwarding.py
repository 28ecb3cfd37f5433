"""What routers and firewalls share: one image, NET_ADMIN, forwarding, rules loaded at start."""

from __future__ import annotations

from lab.plan import firewall as rules
from lab.plan.model import Probe

# services/router/lab-firewall-load touches this file once the rules are in
RULES_LOADED = ("test", "-e", "/run/lab/rules-loaded")
FOLDER = "router"
STAGE = 0
CAPABILITIES = ("NET_ADMIN",)
render = rules.render


def rules_loaded(what: str) -> Probe:
    return Probe(RULES_LOADED, 30, what)
