"""Serve the app, loading it while the node is still being configured.

lab-entrypoint runs lab-init beside this process (LAB_INIT_BESIDE, set by the
image): importing FastAPI, psycopg and the app takes a quarter of a CPU-second,
and needs neither the lab's routes nor its resolver. The socket is opened only
once lab-init has said the node is ready (/run/lab/init-done), so nothing is
ever served on the engine's routes or before the seal is in place.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

# Loading FastAPI, pydantic and the app makes a few hundred thousand objects that all live
# as long as the process: the collector's passes over them while they are made are wasted
# work (measured: about 35 ms of a 250 ms load, on every replica's start).
gc.disable()
import uvicorn  # noqa: E402

from app.main import app  # noqa: E402   the slow part, done while lab-init works

gc.freeze()   # what the load made is permanent: later collections need not look at it again
gc.enable()

INIT_DONE = Path("/run/lab/init-done")
# Left once the sockets listen: the readiness probe tries its HTTP request only then (a curl
# costs 10-15 ms of CPU; tried every quarter second while the app loads on a busy machine,
# a hundred apps' probes cost seconds). lab-app makes the folder and removes an old marker.
SERVING = Path("/run/lab/app/serving")
INIT_FAILED = Path("/run/lab/init-failed")
INIT_WAIT_SECONDS = 120   # lab-init itself gives up waiting for routes after 30 s


def wait_for_lab_init() -> None:
    deadline = time.monotonic() + INIT_WAIT_SECONDS
    while not INIT_DONE.exists():
        if INIT_FAILED.exists():
            sys.exit("lab-app: lab-init failed (its reason is above): not serving")
        if time.monotonic() > deadline:
            sys.exit(f"lab-app: lab-init did not finish within {INIT_WAIT_SECONDS} s: not serving")
        time.sleep(0.01)


class _Server(uvicorn.Server):
    """uvicorn's server, leaving SERVING once it listens."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            try:
                SERVING.touch()
            except OSError:
                pass   # not under lab-app (no folder): the probe's gate is the app's own matter


def main() -> None:
    wait_for_lab_init()
    # LAB_APP_HOST from lab-app: "" on a dual-stack node (every family's wildcard), else 0.0.0.0.
    config = uvicorn.Config(app, host=os.environ.get("LAB_APP_HOST", "0.0.0.0"),
                            port=int(os.environ.get("LAB_APP_PORT", "8000")),
                            proxy_headers=True, forwarded_allow_ips="*", access_log=False)
    _Server(config).run()


if __name__ == "__main__":
    main()
