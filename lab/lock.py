"""One writer per lab: a lock file in the lab's state directory.

`up`, `down`, `stop` and `start` hold it while they change a lab; a second
writer is refused at once with the name and pid of the first. The lock is an
flock(2) on an open file, so the kernel drops it when its process dies, even by
SIGKILL: a stale lock is simply taken over. Commands that only read never take
it. The lock covers processes on this host (the state directory is local).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from typing import Iterator

from lab.errors import LabBusy
from lab.state import state_dir

LOCK_FILE = "writer.lock"


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        age = time.time() - float(holder["since"])
        return f"`lab {holder['command']}` (pid {holder['pid']}, for {age:.0f} s)"
    except (ValueError, KeyError, TypeError):
        return "another `lab` command"


def _holder_record(descriptor: int) -> str:
    """The holder's record; a holder that has just taken the lock may not have written it
    yet (two commands started together), so wait a moment for it."""
    for _ in range(20):
        text = os.pread(descriptor, 4096, 0).decode(errors="replace")
        if text.strip():
            return text
        time.sleep(0.05)
    return ""


@contextmanager
def lab_writer(lab: str, command: str) -> Iterator[None]:
    """Hold the lab's writer lock for the block; LabBusy if another process holds it."""
    directory = state_dir(lab)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(_holder_record(descriptor))
            raise LabBusy(f"lab '{lab}' is busy: {holder} is changing it; wait for it to "
                          "finish, then run this command again") from None
        record = json.dumps({"pid": os.getpid(), "command": command, "since": time.time()})
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing drops the flock
