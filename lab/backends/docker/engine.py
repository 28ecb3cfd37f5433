"""Connecting to the Docker engine, and turning its errors into sentences.

Every call into the engine from this package goes through `engine_call`, so a
user never sees a raw docker.errors traceback: they see what failed and what
to do about it.
"""

from __future__ import annotations

import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import docker
import docker.errors
import requests.exceptions

from lab.errors import RuntimeFailure

ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class EngineUnavailable(RuntimeFailure):
    """No Docker engine answers."""


class NodeFailed(RuntimeFailure):
    """A node did not start or did not become ready; carries the end of its log."""

    def __init__(self, node: str, reason: str, log_tail: str = ""):
        self.node = node
        self.reason = reason
        self.log_tail = log_tail
        text = f"node '{node}' failed: {reason}"
        if log_tail.strip():
            indented = "\n".join(f"  | {line}" for line in log_tail.rstrip().splitlines())
            text += f"\nlast lines of its log:\n{indented}"
        super().__init__(text)


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST or the local socket)."""
    try:
        client = docker.from_env(timeout=timeout, max_pool_size=64)   # one connection per worker
        client.ping()
        return client
    except ENGINE_ERRORS as error:
        raise EngineUnavailable(
            f"cannot reach the Docker engine ({_first_line(error)}): start it (for example "
            "`dockerd &`, or `systemctl start docker`) or point DOCKER_HOST at one") from error


@contextmanager
def engine_call(what: str) -> Iterator[None]:
    """Wrap engine errors raised while doing `what` into a RuntimeFailure."""
    try:
        yield
    except ENGINE_ERRORS as error:
        raise RuntimeFailure(f"{what}: {_first_line(error)}") from error


def _first_line(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    text = str(explanation or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None      # None only when the engine never told it (see run_command)
    stdout: bytes
    stderr: bytes


EXIT_CODE_WAIT = 30.0     # seconds; at load 30+ the engine has taken several to record it


def run_command(container, command: list[str], environment: dict | None = None) -> CommandResult:
    """Run command in a running container; its exit code and output, kept apart.

    The engine may close the output stream a moment before it records the exit code: asked
    at once (as docker-py's exec_run does) it says "running" with no code, and a command that
    failed would read as None. So the code is asked for until the engine has it.
    """
    api = container.client.api
    created = api.exec_create(container.id, command, environment=environment)
    stdout, stderr = _exec_output(api, created["Id"])
    deadline, pause = time.monotonic() + EXIT_CODE_WAIT, 0.005
    while True:
        state = api.exec_inspect(created["Id"])
        if not state.get("Running") and state.get("ExitCode") is not None or time.monotonic() > deadline:
            return CommandResult(state.get("ExitCode"), stdout, stderr)
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


FRAME_HEADER = struct.Struct(">BxxxL")     # the engine's stream id (1 out, 2 err) and length
STDERR_STREAM = 2


def _exec_output(api, exec_id: str) -> tuple[bytes, bytes]:
    """Start an exec and read its multiplexed output to the end: (stdout, stderr).

    Read through the HTTP response's buffered reader, not its raw socket as docker-py's
    exec_start does: when a command answers at once, its first frames can arrive with the
    response headers, and the reader has already taken them into its buffer. Read from the
    raw socket they are lost and the frames that follow are misread ("116 is not a valid
    stream"; 5 commands in 600 at load 8 here).
    """
    response = api._post_json(api._url("/exec/{0}/start", exec_id), data={"Tty": False, "Detach": False},
                              headers={"Connection": "Upgrade", "Upgrade": "tcp"}, stream=True)
    try:
        api._raise_for_status(response)
        reader = response.raw._fp.fp          # http.client's buffered reader of the hijacked socket
        api._disable_socket_timeout(reader.raw)   # a command may stay silent longer than the API timeout
        return _read_frames(reader)
    finally:
        response.close()


def _read_frames(reader) -> tuple[bytes, bytes]:
    streams = {1: bytearray(), STDERR_STREAM: bytearray()}
    while len(header := reader.read(FRAME_HEADER.size)) == FRAME_HEADER.size:
        stream, length = FRAME_HEADER.unpack(header)
        data = reader.read(length)
        streams[STDERR_STREAM if stream == STDERR_STREAM else 1].extend(data)
        if len(data) < length:
            break
    return bytes(streams[1]), bytes(streams[STDERR_STREAM])
