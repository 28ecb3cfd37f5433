"""database: PostgreSQL 15 with a per-lab password and a data volume."""

from lab.kinds.registry import DB_PASSWORD, SQL_DATABASE, Kind, register
from lab.plan.model import Probe
from lab.plan.web import render_database

DATA = "/var/lib/postgresql/data"   # the cluster, on the node's data volume

KIND = register(Kind(
    name="database", folder="database", stage=1,
    # pg_isready (a libpq client: 10-15 ms of CPU a try) only once the server's own status
    # line (postmaster.pid's 8th) says ready; until then a try is shell builtins.
    probe=Probe(("sh", "-c", "n=0; while [ $n -lt 8 ] && IFS= read -r status; do n=$((n + 1)); done "
                 f"< {DATA}/postmaster.pid && [ \"${{status%% *}}\" = ready ] && pg_isready -q -h 127.0.0.1"),
                120, "postgres says ready (postmaster.pid), and pg_isready"),
    data_volume=DATA, secrets=frozenset({DB_PASSWORD}),
    render=render_database, roles=frozenset({SQL_DATABASE}),
    colour="#76b7b2", shape="cylinder",
))
