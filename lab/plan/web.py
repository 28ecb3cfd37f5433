"""Config files of the web tier: load balancer (nginx), app servers (FastAPI), database
(PostgreSQL). The lab CA goes to every node (lab/plan/__init__.py).

Secrets (keys, the database password) come from the lab's state (lab/state.py)
and travel as files under /lab, never as environment variables or command
lines, so `docker inspect` and process lists do not show them.
"""

from __future__ import annotations

from lab.kinds import registry
from lab.plan.model import LabState, Rendered
from lab.plan.nginx import KEY, render_load_balancer
from lab.topology import Instance, Lab

DB_PORT = 5432
# Files under /lab that hold a secret: written 0600 wherever they land on the host.
SECRET_FILES = frozenset({"db/password", "db/url", KEY})


def db_user(database_name: str) -> str:
    return f"{database_name}_app"


def _password(state: LabState, db_node: str) -> str:
    # Without state (a plan only shown, never run) the file stays empty: the
    # database then refuses every password rather than accept a known one.
    return state.values.get(f"db/{db_node}.password", "")


def database_files(lab: Lab, db_node: str, state: LabState) -> dict[str, str]:
    """The files a node using a database reads to connect (db/host, port, name, user, password)."""
    db_spec = lab.spec.nodes[db_node]
    # The address, not a DNS name: the app must work before and without the lab's DNS.
    db_address = lab.instances_of(db_node)[0].first_address
    return {"db/host": f"{db_address}\n", "db/port": f"{DB_PORT}\n",
            "db/name": f"{db_spec.database}\n", "db/user": f"{db_user(db_spec.database)}\n",
            "db/password": _password(state, db_node) + "\n"}


def render_app(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    spec = lab.spec.nodes[instance.node]
    if spec.database is None:
        return Rendered()
    return Rendered(files=database_files(lab, spec.database, state))


def _client_subnets(lab: Lab, db_node: str) -> list[str]:
    """Subnets of the app instances that use this database: the only ones let in by pg_hba."""
    subnets: list[str] = []
    for name, node in lab.spec.nodes.items():
        if registry.get(node.kind).database_of(node) == db_node:
            for instance in lab.instances_of(name):
                for network in instance.addresses:
                    declared = lab.spec.networks[network]
                    # an app on a dual-stack network may come over IPv6 as well
                    for subnet in (declared.subnet, *([declared.subnet6] if network in instance.addresses6 else [])):
                        if str(subnet) not in subnets:
                            subnets.append(str(subnet))
    return subnets


def render_database(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    spec = lab.spec.nodes[instance.node]
    listen = ["127.0.0.1", *(str(a) for a in instance.all_addresses())]   # IPv6 too, on a dual-stack lab
    files = {"db/name": f"{spec.database}\n", "db/user": f"{db_user(spec.database)}\n",
             "db/password": _password(state, instance.node) + "\n",
             "db/listen": ",".join(listen) + "\n",
             "db/allow": "".join(f"{subnet}\n" for subnet in _client_subnets(lab, instance.node))}
    return Rendered(files=files)


__all__ = ["Rendered", "SECRET_FILES", "database_files", "db_user", "render_app", "render_database",
           "render_load_balancer"]
