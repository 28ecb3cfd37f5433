"""Running a command in a pod's node container through the API's exec (a WebSocket stream)."""

from __future__ import annotations

import kubernetes.client
from kubernetes.stream import stream

from lab.errors import RuntimeFailure

EXEC_TIMEOUT_SECONDS = 120


def run_in_pod(api: kubernetes.client.ApiClient, namespace: str, pod: str, command: list[str],
               what: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of command in the pod's container "node"."""
    # stream() swaps the client's transport while it runs: a client of its own keeps
    # exec calls made from several threads (lab trace) from meeting.
    own = kubernetes.client.ApiClient(api.configuration)
    try:
        core = kubernetes.client.CoreV1Api(own)
        session = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
                         container="node", stdin=False, stdout=True, stderr=True, tty=False,
                         _preload_content=False)
        session.run_forever(timeout=EXEC_TIMEOUT_SECONDS)
        if session.is_open():
            session.close()
            raise RuntimeFailure(f"{what}: no end after {EXEC_TIMEOUT_SECONDS} s")
        stdout, stderr = session.read_stdout() or "", session.read_stderr() or ""
        code = session.returncode
    except kubernetes.client.ApiException as error:
        raise RuntimeFailure(f"{what}: the cluster refused it ({error.reason})") from None
    finally:
        own.close()
    return code, stdout, stderr
