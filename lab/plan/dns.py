"""Config files of DNS servers (BIND) and the resolver (Unbound).

Not rendered yet: these kinds run their images' stand-in configs.
"""

from __future__ import annotations

from lab.plan.model import Rendered

RENDERERS: dict = {}  # kind -> render(lab, instance, state) -> Rendered; kinds: "dns-root", "dns-tld", "dns-auth", "dns-resolver"

__all__ = ["RENDERERS", "Rendered"]
