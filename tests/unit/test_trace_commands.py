"""The shell commands a trace runs in a node, run here with stand-ins for curl and tcpdump."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

from lab.trace.web import SPOOLED, curl_command
from lab.trace.wire import start_command


def test_curl_output_is_spooled_then_printed_whole_with_its_exit_status():
    # a stand-in curl: output on both streams, then a failure
    stand_in = ["sh", "-c", 'echo "* Connected" >&2; printf body; echo "curl: (7) refused" >&2; exit 7']
    done = subprocess.run([*SPOOLED, *stand_in], capture_output=True, text=True, timeout=30)
    assert done.returncode == 7
    assert done.stdout == "body" and done.stderr == "* Connected\ncurl: (7) refused\n"
    assert curl_command("https://www.shop.test/", "00-x-y-01")[:len(SPOOLED)] == SPOOLED


def test_a_started_capture_leaves_none_of_its_streams_on_the_exec(tmp_path):
    # A stand-in tcpdump that says it listens, then runs on: if it kept the shell's stdout, the
    # command (like an engine exec reading it) would not finish until tcpdump ended.
    fake = tmp_path / "tcpdump"
    fake.write_text("#!/bin/sh\nwhile [ \"$1\" != -w ]; do shift; done\n"
                    f"printf '%s' \"$2\" > {tmp_path}/file\n"
                    "echo 'listening on any' >&2\nexec sleep 60\n")
    # and a stand-in ping whose packet "tcpdump" writes: the capture counts as live only then
    ping = tmp_path / "ping"
    ping.write_text("#!/bin/sh\nwhile [ \"$1\" != -p ]; do shift; done\n"
                    f"python3 -c \"import sys; open(open('{tmp_path}/file').read(), 'ab')"
                    f".write(bytes.fromhex(sys.argv[1]))\" \"$2\"\n")
    for tool in (fake, ping):
        tool.chmod(0o755)
    capture = secrets.token_hex(6)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    try:
        done = subprocess.run(start_command(capture, 443), capture_output=True, env=env, timeout=30)
        assert done.returncode == 0, done.stderr
    finally:
        pid = Path(f"/tmp/lab-trace-{capture}.pid")
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGTERM)
        for leftover in Path("/tmp").glob(f"lab-trace-{capture}.*"):
            leftover.unlink()
