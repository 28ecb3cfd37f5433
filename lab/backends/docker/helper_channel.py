"""Talking to a running helper through its own standard input and output.

A request to a helper by exec costs the engine about 40 ms of CPU (the exec's create and
start, and runc run anew: it copies itself into memory and joins the container's
namespaces); a line written to the helper's standard input, through one attach connection
held open, costs next to nothing. So a helper that serves many requests (the route helper:
one per node of a lab) reads them as lines on its stdin and answers with lines on stdout.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

from lab.backends.docker.engine import FRAME_HEADER, STDERR_STREAM

SEND_SECONDS = 30   # a helper that takes no request for this long is stuck


class LineChannel:
    """An attach connection to a created or running container (created with stdin open):
    send() writes a line to its stdin; every line it prints on stdout goes to on_line (in
    a reader thread); on_end is called once when the connection ends (the helper exited,
    or close())."""

    def __init__(self, api, container_id: str, on_line: Callable[[str], None], on_end: Callable[[], None]):
        self._response = api._post(api._url("/containers/{0}/attach", container_id),
                                   params={"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1},
                                   headers={"Connection": "Upgrade", "Upgrade": "tcp"}, stream=True)
        api._raise_for_status(self._response)
        # The buffered reader of the hijacked connection, not its raw socket: frames that
        # came with the response's headers are already in its buffer (see engine.py).
        self._reader = self._response.raw._fp.fp
        api._disable_socket_timeout(self._reader.raw)   # a helper may stay silent for long
        self._socket = self._reader.raw._sock
        self._send_lock = threading.Lock()
        self._on_line, self._on_end = on_line, on_end
        self._thread = threading.Thread(target=self._read, name=f"channel-{container_id[:12]}", daemon=True)
        self._thread.start()

    def send(self, line: str, timeout: float | None = None) -> None:
        """Write a line; OSError when the helper has taken nothing for timeout seconds
        (SEND_SECONDS unless given; the socket stays blocking for the reader: the wait for
        room is a select, not a timeout)."""
        timeout = SEND_SECONDS if timeout is None else timeout
        data = memoryview(line.encode() + b"\n")
        deadline = time.monotonic() + timeout
        with self._send_lock:
            while data:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self._socket], [], left)[1]:
                    raise OSError(f"the helper took no request for {timeout:.0f} s")
                try:
                    data = data[self._socket.send(data, socket.MSG_DONTWAIT):]
                except BlockingIOError:
                    pass   # the room select saw was taken: wait again

    def _read(self) -> None:
        pending = b""
        try:
            while len(header := self._reader.read(FRAME_HEADER.size)) == FRAME_HEADER.size:
                stream, length = FRAME_HEADER.unpack(header)
                data = self._reader.read(length)
                if stream != STDERR_STREAM:
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self._on_line(line.decode(errors="replace"))
                if len(data) < length:
                    break
        except (OSError, ValueError):
            pass   # the connection closed under the read: close(), or the engine went away
        finally:
            self._on_end()

    def close(self) -> None:
        try:
            self._socket.shutdown(socket.SHUT_RDWR)   # wakes the reader's blocked read
        except OSError:
            pass
        self._response.close()
        self._thread.join(timeout=5)
