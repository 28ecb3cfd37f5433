"""Where the app finds its database: files the planner writes under /lab/db/.

The password is read from a file (LAB_DB_PASSWORD_FILE, a private copy made
by lab-app) and never logged.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

DB_DIR = Path(os.environ.get("LAB_DB_DIR", "/lab/db"))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass(frozen=True)
class Settings:
    node: str
    db: dict | None   # psycopg's connection parameters; None: no database in the topology

    @classmethod
    def load(cls) -> "Settings":
        node = os.environ.get("LAB_NODE") or socket.gethostname()
        host, name, user = (_read(DB_DIR / f) for f in ("host", "name", "user"))
        if not (host and name and user):
            return cls(node, None)
        password = _read(Path(os.environ.get("LAB_DB_PASSWORD_FILE", DB_DIR / "password"))) or ""
        port = int(_read(DB_DIR / "port") or 5432)
        return cls(node, {"host": host, "port": port, "dbname": name, "user": user, "password": password})
