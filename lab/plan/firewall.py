"""Config files of routers and firewalls (iptables rules, NAT).

Not rendered yet: these kinds run their images' stand-in configs.
"""

from __future__ import annotations

from lab.plan.model import Rendered

RENDERERS: dict = {}  # kind -> render(lab, instance, state) -> Rendered; kinds: "router", "firewall"

__all__ = ["RENDERERS", "Rendered"]
