"""The lab's ledger: what the last `lab up` that ended cleanly left, readable in one call.

A no-op `lab up` should cost a few list calls whatever the lab's size, yet two
things about a running node are not in the engine's list: which live files it
has (they change in place, and a container's labels cannot) and whether it is
known to be ready. The ledger holds both: an empty volume, `LAB.ledger`, whose
labels name each node's live-file hash. It exists only while the lab is as the
last successful run left it:

- a run that is about to change anything removes it first, and writes it anew
  only when it ends with every node ready (or rolled back completely to a lab that
  had one); a run killed half-way leaves none;
- `lab start` removes it while the node starts and puts it back once the node is
  ready; `lab down` removes it. (`lab stop` leaves it: it vouches only for running
  nodes, and the next `lab up` starts a stopped one.)

So a ledger found means every node it names was ready when it was written and
nothing of the lab changed since through this `lab`: a node whose container is the
one the ledger names (same id: not made anew by anything else since) is trusted
without a probe or a read. No ledger (an older lab, a killed run)
means the full check: each node's live files are read and kept nodes probed and
repaired, as before. The ledger carries no `lab.name` label, so it is never taken
for a lab's data volume nor for a lab by itself.
"""

from __future__ import annotations

import docker
import docker.errors

from lab.backends.docker.engine import engine_call

LABEL_LEDGER = "lab.ledger"          # value: the lab's name
LABEL_LIVE_PREFIX = "lab.live."      # + node name; value: "CONTAINER-ID LIVE-FILE-HASH"


def ledger_name(lab: str) -> str:
    return f"{lab}.ledger"


Ledger = dict[str, tuple[str, str]]   # node -> (container id, live-file hash)


def read_ledger(client: docker.DockerClient, lab: str) -> Ledger | None:
    """What the ledger says of each node; None when the lab has none."""
    with engine_call(f"reading the ledger of lab '{lab}'"):
        found = client.api.volumes(filters={"label": f"{LABEL_LEDGER}={lab}"}).get("Volumes") or []
    if not found:
        return None
    ledger = {}
    for key, value in (found[0].get("Labels") or {}).items():
        container_id, _, live = value.partition(" ")
        if key.startswith(LABEL_LIVE_PREFIX) and live:
            ledger[key.removeprefix(LABEL_LIVE_PREFIX)] = (container_id, live)
    return ledger


def trusted_live_hash(ledger: Ledger | None, node: str, container) -> str | None:
    """The node's live-file hash as the ledger has it, if the ledger vouches for this very
    container; None: ask the node."""
    container_id, live = (ledger or {}).get(node, ("", ""))
    return live if container is not None and container_id == container.id else None


def drop_ledger(client: docker.DockerClient, lab: str) -> None:
    """Remove the ledger (gone already is fine): the lab is about to change."""
    with engine_call(f"removing the ledger of lab '{lab}'"):
        try:
            client.api.remove_volume(ledger_name(lab), force=True)
        except docker.errors.NotFound:
            pass


def write_ledger(client: docker.DockerClient, lab: str, ledger: Ledger) -> None:
    """Record that these nodes are ready, each in this container with these live files."""
    labels = {LABEL_LEDGER: lab, **{f"{LABEL_LIVE_PREFIX}{node}": f"{container_id} {live}"
                                    for node, (container_id, live) in ledger.items()}}
    drop_ledger(client, lab)   # a volume's labels cannot change: a new one replaces it
    with engine_call(f"writing the ledger of lab '{lab}'"):
        client.api.create_volume(ledger_name(lab), labels=labels)
