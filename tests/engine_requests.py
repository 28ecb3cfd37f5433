"""Counting the requests a Docker client sends to the engine, by their shape.

An independent observation for tests and benches: it hooks the HTTP session the
client uses (every engine call goes through it), so it sees what the engine
sees, whatever the code under test believes it does.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urlparse

# Engine paths name one object by a 64-hex id or by a name; both become ":id", so
# "GET /containers/:id/json" counts every per-container inspect as one shape.
_VERSION = re.compile(r"^/v\d+\.\d+")
_PER_OBJECT = re.compile(r"^/(containers|networks|volumes|exec)/(?!json$|create$|prune$)[^/]+")
_PER_IMAGE = re.compile(r"^/images/(?!json$|create$|prune$|search$|load$)(.+?)(?=/(json|tag|history|push|get)$|$)")


def shape(method: str, url: str) -> str:
    path = _VERSION.sub("", urlparse(url).path)
    path = _PER_OBJECT.sub(lambda m: f"/{m.group(1)}/:id", path)
    path = _PER_IMAGE.sub("/images/:id", path)
    return f"{method} {path}"


class RequestLog:
    """The shapes of the requests sent while counting, in order."""

    def __init__(self) -> None:
        self.shapes: list[str] = []
        self._lock = threading.Lock()

    def record(self, response, *_, **__) -> None:
        with self._lock:
            self.shapes.append(shape(response.request.method, response.request.url))

    def counts(self) -> Counter:
        return Counter(self.shapes)

    def per_object(self) -> list[str]:
        """Requests that name one container, network, volume or exec (cost grows with a lab's size)."""
        return [s for s in self.shapes if ":id" in s and not s.split()[1].startswith("/images/")]


@contextmanager
def counted(client) -> Iterator[RequestLog]:
    """Count every request the docker client sends inside the block."""
    log = RequestLog()
    hooks = client.api.hooks.setdefault("response", [])
    hooks.append(log.record)
    try:
        yield log
    finally:
        hooks.remove(log.record)
