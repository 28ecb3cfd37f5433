"""Load a page in headless Chromium and print every DevTools event of the load as JSON lines.

Standard library only: it runs inside a lab node (python3 is in every lab image) as well
as on a host. It talks the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON
messages ended by a NUL byte, commands on the browser's fd 3, replies on its fd 4), so
no port is opened and nothing but the page's own traffic leaves the browser.

    python3 driver.py URL [--reload] [--screenshot FILE|-] [--timeout SECONDS]

Output, one JSON object a line: {"visit": n, "wall": unix time} before each load, then the
Network and Page events as Chromium sent them ({"method", "params"}), then {"navigation": ...}
(the browser's own Navigation Timing of the page) and {"done": n, "wall": ...} after each load;
with `--screenshot -`, {"screenshot": base64 PNG} last.

--reload closes the browser after the first load and opens it again on the same profile, as
a person coming back does: its disk cache is kept, while its in-memory DNS cache and open
connections go, so the second load shows both the browser's cache and the OS's DNS cache. The
second load starts on a new wall-clock second, so logs stamped to the second (dnsmasq's) tell
the two loads apart.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--remote-debugging-pipe"]
SETTLE_S = 0.5          # after the load event, the page's own fetches (the API call) finish
NAVIGATION = ("JSON.stringify(performance.getEntriesByType('navigation')[0] || null)")


class Browser:
    def __init__(self, binary: str, profile: str, extra: list[str] | None = None) -> None:
        to_browser, from_us = os.pipe()
        from_browser, to_us = os.pipe()
        # Keep our ends away from 3 and 4, which the child's ends become.
        self._out = fcntl.fcntl(from_us, fcntl.F_DUPFD_CLOEXEC, 10)
        self._in = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(from_us), os.close(from_browser)

        def wire() -> None:
            os.dup2(to_browser, 3)
            os.dup2(to_us, 4)

        self.process = subprocess.Popen([binary, *FLAGS, *(extra or []), f"--user-data-dir={profile}",
                                         "about:blank"],
                                        preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(to_browser), os.close(to_us)
        self._buffer = b""
        self._next_id = 0
        self.session = None

    def send(self, method: str, params: dict | None = None, session: bool = True) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._next_id

    def receive(self, deadline: float) -> dict | None:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._in], [], [], remaining)[0]:
                return None
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 30,
             events: list | None = None) -> dict:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(deadline)
            if message is None:
                raise TimeoutError(f"no answer to {method} within {timeout} s")
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if events is not None and "method" in message:
                events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
            self.process.wait(timeout=10)
        except Exception:   # already gone, or stuck: make sure it ends
            self.process.kill()
            self.process.wait()


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def visit(browser: Browser, url: str, number: int, timeout: float) -> None:
    emit({"visit": number, "url": url, "wall": time.time()})
    events: list = []
    browser.call("Page.navigate", {"url": url}, events=events, timeout=timeout)
    deadline = time.monotonic() + timeout
    loaded = None
    while True:
        message = browser.receive(deadline if loaded is None else min(deadline, loaded + SETTLE_S))
        if message is None:
            break
        if "method" in message:
            events.append(message)
            if message["method"] == "Page.loadEventFired" and loaded is None:
                loaded = time.monotonic()
    for event in events:
        if event["method"].startswith(("Network.", "Page.")):
            emit({"method": event["method"], "params": event["params"]})
    navigation = browser.call("Runtime.evaluate", {"expression": NAVIGATION, "returnByValue": True})
    emit({"navigation": json.loads(navigation.get("result", {}).get("value") or "null"),
          "loaded": loaded is not None})
    emit({"done": number, "wall": time.time()})


def open_page(binary: str, profile: str, flags: list[str], bare: bool = False) -> Browser:
    """A browser on profile with one blank page attached, its Network, Page and Runtime events on
    (bare: without Network, so the browser records no request for us: bench/browse.py's floor)."""
    browser = Browser(binary, profile, flags)
    target = browser.call("Target.createTarget", {"url": "about:blank"}, session=False)
    attached = browser.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                            session=False)
    browser.session = attached["sessionId"]
    for domain in ("Page", "Runtime") if bare else ("Network", "Page", "Runtime"):
        browser.call(f"{domain}.enable")
    return browser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--reload", action="store_true", help="load it a second time in the same browser")
    parser.add_argument("--screenshot", help="write a PNG of the page as rendered (after the last load); "
                                             "'-': print it as base64 JSON")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--bare", action="store_true", help="no Network events: only the page's own timing")
    parser.add_argument("--binary", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--flag", action="append", default=[], help="one more Chromium flag (repeatable)")
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="lab-browse-")   # a fresh profile: an empty browser cache
    browser = None
    try:
        for number in (1, 2) if args.reload else (1,):
            if browser is not None:
                browser.close()
                time.sleep(1.02 - time.time() % 1)   # the next load on a new second
            browser = open_page(args.binary, profile, args.flag, args.bare)
            visit(browser, args.url, number, args.timeout)
        if args.screenshot:
            shot = browser.call("Page.captureScreenshot", {"format": "png"})
            if args.screenshot == "-":
                emit({"screenshot": shot["data"]})
            else:
                with open(args.screenshot, "wb") as file:
                    file.write(base64.b64decode(shot["data"]))
        return 0
    except (TimeoutError, RuntimeError, OSError) as error:
        emit({"error": str(error)})
        return 1
    finally:
        if browser is not None:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
