"""Recording several nodes' packets at once, for one traced request (`lab trace --pcap`).

One capture helper per node (like `lab capture`'s: it joins the node's network
namespace with only NET_RAW and NET_ADMIN) runs tcpdump on every interface at
once in Linux cooked v2 form, whose header keeps the interface each packet was
seen on and whether it came in or went out. Before tcpdump starts, the helper
prints each interface's index and address, so packets are told apart by
network afterwards. `record` returns only once every tcpdump listens (so the
request cannot outrun them) and removes every helper when its block ends, on
success, error or Ctrl-C; `lab down` removes one a killed run left behind.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Iterator

import docker
import docker.errors

from lab.backends.docker.engine import ENGINE_ERRORS
from lab.backends.docker.helpers import namespace_helper
from lab.backends.docker.images import ensure_images
from lab.interrupts import map_settled, settled
from lab.backends.docker.inspect import node_container
from lab.backends.protocol import NodeCapture
from lab.errors import RuntimeFailure
from lab.kinds import registry
from lab.kinds.registry import TOOLS_IMAGE

RECORD_ROLE = "trace-capture"
LISTEN_TIMEOUT = 30.0      # a loaded engine starts a helper in seconds, not tens of them
# A helper whose command was killed (kill -9) ends by itself after this, and the next `lab up`
# removes it (it removes stopped helpers); a trace lasts 2 minutes at most (--max-time 120).
MAX_SECONDS = 600
# Before a capture is stopped, the helper pings its own loopback with a pattern of this run:
# once tcpdump has written that packet, it has written every packet seen before it (a loaded
# tcpdump lags behind the kernel, and an interrupt would drop what it has not read yet).
MARKER_FILTER = "( icmp and host 127.0.0.1 )"
FLUSH_TIMEOUT = 10.0

# Says which interface index holds which address (stderr), then becomes tcpdump writing pcap on
# stdout, under a time limit (timeout passes our SIGINT on to tcpdump).
RECORD_SCRIPT = r"""
ip -o -4 addr show | while read -r index device family address rest; do
  echo "interface ${index%:} $device ${address%/*}" >&2
done
exec timeout -s INT "$LAB_MAX_SECONDS" tcpdump -i any -y LINUX_SLL2 --immediate-mode -U -s 65535 -B 16384 -w - "$@"
"""


class _Capture:
    """One node's helper, its stream read into memory by a thread of its own."""

    def __init__(self, client: docker.DockerClient, lab: str, container, node: str, bpf: str, image: str):
        self.node = node
        self._networks = {info.get("IPAddress"): name.removeprefix(f"{lab}-") for name, info in
                          ((container.attrs.get("NetworkSettings") or {}).get("Networks") or {}).items()}
        wanted = f"( {bpf} ) or {MARKER_FILTER}" if bpf.strip() else ""
        self._context = namespace_helper(client, lab, RECORD_ROLE, image, RECORD_SCRIPT, f"container:{container.id}",
                                         ["NET_RAW", "NET_ADMIN"], {"LAB_MAX_SECONDS": str(MAX_SECONDS)},
                                         arguments=wanted.split(), attach=True)
        self.helper, stream = self._context.__enter__()
        self.data = bytearray()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        try:
            for chunk in stream:
                self.data.extend(chunk)
        except ENGINE_ERRORS + (OSError, ValueError):
            pass   # the helper was removed under the stream: what was read is kept

    def _stderr(self) -> str:
        try:
            return self.helper.logs(stdout=False, stderr=True).decode(errors="replace")
        except ENGINE_ERRORS:
            return ""

    def wait_listening(self) -> None:
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while time.monotonic() < deadline:
            said = self._stderr()
            if "listening on" in said:
                return
            self.helper.reload()
            if self.helper.status == "exited":
                raise RuntimeFailure(f"cannot record packets on '{self.node}': {said.strip()[-300:]}")
            time.sleep(0.05)
        raise RuntimeFailure(f"cannot record packets on '{self.node}': tcpdump was not listening after "
                             f"{LISTEN_TIMEOUT:.0f} s")

    def catch_up(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """True once tcpdump has written everything seen so far (see MARKER_FILTER); False after
        timeout (what it has not written by then is lost, as it would be anyway). A marker is
        sent again every half second: a ping sent before the capture was live is never seen."""
        marker = secrets.token_bytes(8)
        deadline = time.monotonic() + timeout
        while self._reader.is_alive() and time.monotonic() < deadline:
            try:
                self.helper.exec_run(["ping", "-c", "1", "-W", "1", "-p", marker.hex(), "127.0.0.1"])
            except ENGINE_ERRORS:
                return False
            resend = min(deadline, time.monotonic() + 0.5)
            while marker not in self.data and self._reader.is_alive() and time.monotonic() < resend:
                time.sleep(0.02)
            if marker in self.data:
                return True
        return False

    def wait_live(self) -> None:
        """tcpdump says "listening" a moment before its packets reach us (seen: a request's
        first packets missing at the client): only a marker seen in the stream proves it live."""
        self.wait_listening()
        if not self.catch_up(LISTEN_TIMEOUT):
            raise RuntimeFailure(f"cannot record packets on '{self.node}': tcpdump listened but "
                                 f"wrote nothing in {LISTEN_TIMEOUT:.0f} s")

    def stop(self) -> NodeCapture:
        """SIGINT makes tcpdump flush what it holds and exit; the stream then ends."""
        self.catch_up()
        try:
            self.helper.kill(signal="SIGINT")
        except docker.errors.APIError:
            pass   # it exited already
        self._reader.join(timeout=10)
        interfaces = {}
        for line in self._stderr().splitlines():
            words = line.split()
            if len(words) == 4 and words[0] == "interface" and words[1].isdigit():
                interfaces[int(words[1])] = self._networks.get(words[3], words[2])
        return NodeCapture(self.node, interfaces, bytes(self.data))

    def close(self) -> None:
        self._context.__exit__(None, None, None)


class Recording:
    def __init__(self, captures: list[_Capture]):
        self._captures = captures

    def stop(self) -> list[NodeCapture]:
        return map_settled(_Capture.stop, self._captures, 8)


@contextmanager
def record(client: docker.DockerClient, lab: str, filters: dict[str, str]) -> Iterator[Recording]:
    """Every node of filters recording what matches its tcpdump filter; yields once all listen."""
    kind = registry.one_with_role(TOOLS_IMAGE).name   # its image carries tcpdump
    image = ensure_images(client, [kind])[kind]
    with ExitStack() as stack:
        pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(filters))))
        jobs = [pool.submit(_started, client, lab, node, bpf, image) for node, bpf in filters.items()]
        try:
            settled(jobs)   # a signal: raised once every start has ended
            captures = [capture for capture in (job.result() for job in jobs) if capture is not None]
        finally:
            # every start runs to its end, even after an error or Ctrl-C, so each helper made is removed
            pool.shutdown(wait=True)
            for job in jobs:
                if not job.cancelled() and job.exception() is None and job.result() is not None:
                    stack.callback(job.result().close)
        yield Recording(captures)


def _started(client: docker.DockerClient, lab: str, node: str, bpf: str, image: str) -> _Capture | None:
    """A node's capture, listening; None for a node that is not running (it crosses nothing)."""
    container = node_container(client, lab, node)
    if container.status != "running":
        return None
    capture = _Capture(client, lab, container, node, bpf, image)
    try:
        capture.wait_live()
    except BaseException:
        capture.close()
        raise
    return capture
