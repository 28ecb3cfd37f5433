"""database: PostgreSQL 15 with a per-lab password and a data volume."""

from lab.kinds.registry import DB_PASSWORD, SQL_DATABASE, Kind, register
from lab.plan.model import Probe
from lab.plan.web import render_database

KIND = register(Kind(
    name="database", folder="database", stage=1,
    probe=Probe(("pg_isready", "-q", "-h", "127.0.0.1"), 120, "pg_isready"),
    data_volume="/var/lib/postgresql/data", secrets=frozenset({DB_PASSWORD}),
    render=render_database, roles=frozenset({SQL_DATABASE}),
    colour="#76b7b2", shape="cylinder",
))
