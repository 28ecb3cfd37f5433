"""A database's data volume outlives its container: a kept volume from an older image still starts."""

from __future__ import annotations

import pytest

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
