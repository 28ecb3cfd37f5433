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

from app.db import db_errors, db_seconds

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
    spent, failed = db_seconds.set([]), db_errors.set([])
    traceparent, parent = child_traceparent(request.headers.get("traceparent"))
    request.state.traceparent = traceparent
    try:
        response = await call_next(request)
        app_ms = (time.perf_counter() - began) * 1000
        statements, errors = db_seconds.get(), db_errors.get()
    finally:
        db_seconds.reset(spent)
        db_errors.reset(failed)
    db_ms = sum(statements) * 1000
    response.headers["Server-Timing"] = (f'app;desc="{node}";dur={app_ms:.1f}, '
                                         f'db;desc="postgresql";dur={db_ms:.1f}')
    response.headers["X-Served-By"] = node
    response.headers["traceparent"] = traceparent
    _log(request, response.status_code, app_ms, (db_ms, len(statements), errors), traceparent, parent, node)
    return response


def _log(request: Request, status: int, app_ms: float, database: tuple[float, int, list[str]],
         traceparent: str, parent: str | None, node: str) -> None:
    db_ms, db_queries, db_errors_seen = database
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "node": node, "method": request.method,
            "path": request.url.path, "status": status, "app_ms": round(app_ms, 2),
            "db_ms": round(db_ms, 2), "db_queries": db_queries,
            "db_error": db_errors_seen[-1] if db_errors_seen else None,
            "traceparent": traceparent, "parent_span": parent,
            "client": request.client.host if request.client else None}
    print(json.dumps(line), file=sys.stdout, flush=True)
