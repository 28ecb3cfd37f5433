"""What each response tells about its path: which replica served it, how long the
app and its database took (W3C Server-Timing), and the W3C traceparent.

The incoming traceparent's trace id is kept and the app's own span id is
returned in the response's traceparent, and logged with every request as one
JSON line, so a trace can join the lb's log to the app's.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import time

from fastapi import Request

from app.db import db_seconds

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def child_traceparent(incoming: str | None) -> tuple[str, str | None]:
    """(this app's traceparent, the parent span id or None when the trace starts here)."""
    match = TRACEPARENT.match((incoming or "").strip().lower())
    span = secrets.token_hex(8)
    if match and match.group(1) != "0" * 32:
        return f"00-{match.group(1)}-{span}-{match.group(3)}", match.group(2)
    return f"00-{secrets.token_hex(16)}-{span}-01", None


async def path_headers(request: Request, call_next, node: str):
    began = time.perf_counter()
    spent = db_seconds.set([])
    traceparent, parent = child_traceparent(request.headers.get("traceparent"))
    request.state.traceparent = traceparent
    try:
        response = await call_next(request)
        app_ms = (time.perf_counter() - began) * 1000
        db_ms = sum(db_seconds.get()) * 1000
    finally:
        db_seconds.reset(spent)
    response.headers["Server-Timing"] = (f'app;desc="{node}";dur={app_ms:.1f}, '
                                         f'db;desc="postgresql";dur={db_ms:.1f}')
    response.headers["X-Served-By"] = node
    response.headers["traceparent"] = traceparent
    _log(request, response.status_code, app_ms, db_ms, traceparent, parent, node)
    return response


def _log(request: Request, status: int, app_ms: float, db_ms: float, traceparent: str,
         parent: str | None, node: str) -> None:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "node": node, "method": request.method,
            "path": request.url.path, "status": status, "app_ms": round(app_ms, 2),
            "db_ms": round(db_ms, 2), "traceparent": traceparent, "parent_span": parent,
            "client": request.client.host if request.client else None}
    print(json.dumps(line), file=sys.stdout, flush=True)
