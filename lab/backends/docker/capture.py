"""Packet capture from outside a node: `lab capture NODE [NETWORK]`.

A short-lived helper joins the node's network namespace with only NET_RAW and
NET_ADMIN (the node itself needs no capture tool and no capability), runs
tcpdump there and streams pcap on its stdout. The stream is read through the
engine's attach connection, not the log driver, so the bytes arrive exactly as
tcpdump wrote them. The helper carries the lab's label and is removed by the
code that made it whatever happens; `lab down` would find a leftover anyway.
"""

from __future__ import annotations

import threading
import time
from typing import BinaryIO, Callable

import docker
import docker.errors

from lab.backends.protocol import CaptureRequest, CaptureResult
from lab.errors import RuntimeFailure, UsageError
from lab.kinds import registry
from lab.kinds.registry import TOOLS_IMAGE
from lab.backends.docker.engine import ENGINE_ERRORS
from lab.backends.docker.helpers import namespace_helper
from lab.backends.docker.images import ensure_images
from lab.backends.docker.inspect import address_on_network, node_container

CAPTURE_ROLE = "capture"
SNAPLEN = 262144

# Picks the interface that holds the node's address on the asked network ("any" without one),
# then becomes tcpdump: pcap (or, for people, one line a packet) on stdout, packet by packet.
CAPTURE_SCRIPT = r"""
dev=any
if [ -n "$LAB_ADDRESS" ]; then
  dev=$(ip -o -4 addr show | awk -v a="$LAB_ADDRESS/" 'index($4, a) == 1 {print $2; exit}')
  [ -n "$dev" ] || { echo "no interface holds $LAB_ADDRESS" >&2; exit 3; }
fi
echo "capturing on $dev" >&2
if [ "$LAB_FORMAT" = text ]; then
  exec tcpdump -i "$dev" -n -l -s "$LAB_SNAPLEN" $LAB_COUNT "$@"
fi
exec tcpdump -i "$dev" -U -s "$LAB_SNAPLEN" -w - $LAB_COUNT "$@"
"""


def _helper(client: docker.DockerClient, request: CaptureRequest, node):
    kind = registry.one_with_role(TOOLS_IMAGE).name   # its image carries tcpdump
    image = ensure_images(client, [kind])[kind]
    address = address_on_network(node, request.lab, request.network) if request.network else ""
    environment = {"LAB_ADDRESS": address, "LAB_SNAPLEN": str(SNAPLEN),
                   "LAB_FORMAT": "text" if request.text else "pcap",
                   "LAB_COUNT": f"-c {request.packets}" if request.packets else ""}
    return namespace_helper(client, request.lab, CAPTURE_ROLE, image, CAPTURE_SCRIPT, f"container:{node.id}",
                            ["NET_RAW", "NET_ADMIN"], environment, arguments=request.bpf.split(), attach=True)


def _stop(helper) -> None:
    """SIGINT makes tcpdump flush what it holds and exit cleanly."""
    try:
        helper.kill(signal="SIGINT")
    except docker.errors.APIError:
        pass   # already exited (a packet count reached, or an error)


def _why_it_ended(helper) -> str:
    try:
        result = helper.wait(timeout=10)
        stderr = helper.logs(stdout=False, stderr=True).decode(errors="replace").strip()
    except ENGINE_ERRORS:
        return ""
    code = result.get("StatusCode", 0)
    if code not in (0, 130, 143):   # exited by itself, or by the SIGINT we sent
        lines = [line for line in stderr.splitlines() if not line.startswith(("capturing on", "tcpdump: listening"))]
        said = " ".join(lines)[:300]
        if "syntax error" in said or "can't parse filter" in said:
            raise UsageError(f"tcpdump cannot read the filter: {said}; see `man pcap-filter` "
                             "(for example --filter 'port 53')")
        raise RuntimeFailure(f"the capture failed (tcpdump exit {code}): {said}")
    return stderr


def capture(client: docker.DockerClient, request: CaptureRequest, sink: BinaryIO,
            should_stop: Callable[[], bool] = lambda: False) -> CaptureResult:
    """Stream pcap from a node into sink until duration, packet count, should_stop() or an
    interrupt (KeyboardInterrupt ends the capture cleanly and is not re-raised)."""
    node = node_container(client, request.lab, request.node)
    if node.status != "running":
        raise RuntimeFailure(f"node '{request.node}' is {node.status}: start it first (lab start {request.node})")
    started = time.monotonic()
    written = 0
    with _helper(client, request, node) as (helper, stream):
        timer = _Deadline(helper, request.duration)
        try:
            for chunk in stream:
                sink.write(chunk)
                sink.flush()
                written += len(chunk)
                if should_stop():
                    _stop(helper)
        except KeyboardInterrupt:
            _stop(helper)
        finally:
            timer.cancel()
            stderr = _why_it_ended(helper)
    interface = next((line.split()[-1] for line in stderr.splitlines() if line.startswith("capturing on")), "?")
    return CaptureResult(interface, written, time.monotonic() - started)


class _Deadline:
    """Stops the helper after a duration, from a timer thread (the stream read blocks)."""

    def __init__(self, helper, seconds: float | None):
        self._timer = threading.Timer(seconds, _stop, args=(helper,)) if seconds else None
        if self._timer:
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer:
            self._timer.cancel()
