"""hello: answers who it is, says whether the lab's database is reachable, logs JSON.

Configuration comes from the lab: LAB_SERVICE_PORT (its first port), GREETING (the
topology's env:), and LAB_DATABASE_URL_FILE (a file holding the database's URL).
"""

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

NAME = socket.gethostname()
GREETING = os.environ.get("GREETING", "hello")


def database_status() -> tuple[int, str]:
    path = os.environ.get("LAB_DATABASE_URL_FILE")
    if not path:
        return 404, "no database: this service has no database: wiring\n"
    url = urlsplit(open(path).read().strip())
    try:
        with socket.create_connection((url.hostname, url.port or 5432), timeout=2):
            pass
    except OSError as error:
        return 503, f"database unreachable at {url.hostname}:{url.port}: {error}\n"
    # never the password: only where and as whom
    return 200, f"database reachable at {url.hostname}:{url.port} as {url.username}, db {url.path[1:]}\n"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        began = time.monotonic()
        if self.path == "/healthz":
            status, body = 200, "ok\n"
        elif self.path == "/db":
            status, body = database_status()
        else:
            status, body = 200, f"{GREETING} from {NAME}\n"
        took = (time.monotonic() - began) * 1000
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", NAME)
        self.send_header("Server-Timing", f'app;desc="hello";dur={took:.1f}')
        self.end_headers()
        self.wfile.write(data)
        trace = (self.headers.get("traceparent") or "").split("-")
        print(json.dumps({"service": "hello", "node": NAME, "method": "GET", "path": self.path,
                          "status": status, "app_ms": round(took, 3),
                          "trace_id": trace[1] if len(trace) > 2 else None}), flush=True)

    def log_message(self, *args) -> None:   # one JSON line per request instead (above)
        pass


if __name__ == "__main__":
    port = int(os.environ.get("LAB_SERVICE_PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Hello).serve_forever()
