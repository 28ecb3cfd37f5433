"""Stand-in FastAPI app: proves the request reached a given replica.

Settings come from the environment that /lab/env provides: LAB_NODE (the
node's name, e.g. app-2), LAB_REPLICA (its replica number) and LAB_LAB.
"""

from __future__ import annotations

import html
import os
import socket

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI(title="lab app")


def _identity() -> dict[str, str]:
    node = os.environ.get("LAB_NODE") or socket.gethostname()
    # app-2 is replica 2 unless the planner says otherwise.
    replica = os.environ.get("LAB_REPLICA") or node.rpartition("-")[2]
    return {"node": node, "replica": replica, "lab": os.environ.get("LAB_LAB", "")}


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    me = {k: html.escape(v) for k, v in _identity().items()}
    return (
        "<!doctype html><html><head><title>lab app</title></head><body>"
        f"<h1>Hello from {me['node']}</h1>"
        f"<p>replica <span id='replica'>{me['replica']}</span> of lab {me['lab']}</p>"
        "</body></html>"
    )


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/whoami")
def whoami() -> dict[str, str]:
    return _identity()
