"""A database's data volume outlives its container: a kept volume from an older image still starts;
a new one gets the planned role and database; a failed start-up never starts the server."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from lab.backends.docker import apply
from lab.backends.docker.engine import NodeFailed

from .conftest import SHIFT, running_lab

TOPOLOGY = f"""name: it-dbvol{f'-{SHIFT}' if SHIFT else ''}
networks:
  data: {{subnet: 10.{230 + SHIFT}.0.0/24}}
nodes:
  db:
    kind: database
    networks: [data]
"""


@pytest.fixture
def lab(engine, images):
    with running_lab(engine, TOPOLOGY) as made:
        yield made


def test_a_kept_volume_owned_by_another_uid_is_given_back_to_postgres(lab):
    """An image rebuilt with other system users' numbers (a package added to the base image
    does that) must still start on the data volume an older one left."""
    code, output = lab.exec("db", "chown", "-R", "4242:4242", "/var/lib/postgresql/data")
    assert code == 0, output
    lab.down(volumes=False)      # the container goes, its data volume stays
    lab.up()                     # a new container on the kept volume
    code, owner = lab.exec("db", "sh", "-c", "stat -c %u /var/lib/postgresql/data/PG_VERSION; id -u postgres")
    assert code == 0 and len(set(owner.split())) == 1, owner   # owned by postgres again, seen in the node
    code, output = lab.exec("db", "pg_isready", "-h", "127.0.0.1")
    assert code == 0, output
    logs = lab.client.containers.get(f"{lab.name}-db").logs().decode()
    assert "belong to uid 4242, not postgres" in logs


def test_a_new_volume_gets_the_planned_role_and_database_and_serves_after_lab_init(lab):
    """The image's placeholder role and database become the lab's (renamed, with the lab's
    password) and the server starts only once lab-init is done."""
    files = lab.plan.container("db").files
    name, user, password = (files[f"db/{key}"].strip() for key in ("name", "user", "password"))
    # A login over TCP with the planned password, as the apps do (scram, pg_hba's 127.0.0.1 line).
    code, output = lab.exec("db", "sh", "-c", "PGPASSWORD=\"$(cat /lab/db/password)\" psql -h 127.0.0.1 "
                            f"-U {user} -d {name} -Atc 'select current_user, current_database()'")
    assert code == 0 and output.strip() == f"{user}|{name}", output
    code, output = lab.exec("db", "sh", "-c", f"PGPASSWORD='{password}x' psql -h 127.0.0.1 -U {user} -d {name} -c 'select 1'")
    assert code != 0 and "password authentication failed" in output, output
    code, output = lab.exec("db", "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "psql", "-At",
                            "-c", "select rolname from pg_roles where rolname like 'lab-placeholder%'",
                            "-c", "select datname, pg_get_userbyid(datdba) from pg_database where datname not like 'template%'")
    assert code == 0, output
    assert sorted(output.split()) == sorted([f"{name}|{user}", "postgres|postgres"]), output
    logs = lab.client.containers.get(f"{lab.name}-db").logs().decode()
    assert "from the image's template" in logs
    assert logs.index("lab-init: done") < logs.index("lab-postgres: starting postgres"), logs


def test_a_database_whose_start_up_fails_never_starts_postgres(make_lab):
    made = make_lab(TOPOLOGY.replace("it-dbvol", "it-dbfail"))
    db = made.plan.container("db")
    # A CA that is no certificate: lab-init (run beside the cluster's preparation) refuses it.
    broken = dataclasses.replace(db, files=MappingProxyType({**db.files, "ca.crt": "not a certificate\n"}))
    made.plan = dataclasses.replace(made.plan, containers=(broken,))
    with pytest.raises(NodeFailed) as caught:
        apply.up(made.client, made.plan)
    assert caught.value.node == "db" and "exited with status 1" in caught.value.reason
    assert "/lab/ca.crt is not a certificate" in caught.value.log_tail
    assert "lab-init failed" in caught.value.log_tail
    assert "starting postgres" not in caught.value.log_tail and "ready to accept" not in caught.value.log_tail
