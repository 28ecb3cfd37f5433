"""Config files of the load balancer (nginx), app servers (FastAPI) and the database (PostgreSQL).

Not rendered yet: these kinds run their images' stand-in configs.
"""

from __future__ import annotations

from lab.plan.model import Rendered

RENDERERS: dict = {}  # kind -> render(lab, instance, state) -> Rendered; kinds: "load-balancer", "app", "database"

__all__ = ["RENDERERS", "Rendered"]
