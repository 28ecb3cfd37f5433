"""The HTTP and WebSocket side of the recorded Kubernetes API fake (kubernetes_fake.py): routes,
refusals in the API's Status form, chunked followed logs and exec in the v4.channel.k8s.io framing.
The cluster's state and behaviour are FakeCluster's; this module only speaks the protocol."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# plural -> (kind, apiVersion its objects must carry)
RESOURCES = {
    "namespaces": ("Namespace", "v1"),
    "configmaps": ("ConfigMap", "v1"),
    "secrets": ("Secret", "v1"),
    "persistentvolumeclaims": ("PersistentVolumeClaim", "v1"),
    "pods": ("Pod", "v1"),
    "deployments": ("Deployment", "apps/v1"),
    "daemonsets": ("DaemonSet", "apps/v1"),
    "services": ("Service", "v1"),
    "network-attachment-definitions": ("NetworkAttachmentDefinition", "k8s.cni.cncf.io/v1"),
}
ROUTE = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+/[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z-]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?$")
NAMESPACE_ROUTE = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?$")


class Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def handler(cluster):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:   # quiet: the tests read cluster.calls
            pass

        def _answer(self, status: int, body: dict | bytes, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else {}

        def _route(self):
            parts = urlsplit(self.path)
            query = {k: v for k, v in parse_qs(parts.query).items()}
            cluster.calls.append((self.command, parts.path))
            namespace_match = NAMESPACE_ROUTE.match(parts.path)
            if namespace_match:
                return "Namespace", "v1", None, namespace_match["name"], None, query
            match = ROUTE.match(parts.path)
            if not match or match["plural"] not in RESOURCES:
                raise Refusal(404, "NotFound", f"the fake knows no {parts.path}")
            kind, version = RESOURCES[match["plural"]]
            if (match["core"] or match["group"]) != version:
                raise Refusal(404, "NotFound", f"{match['plural']} are not served at {parts.path}")
            return kind, version, match["ns"], match["name"], match["sub"], query

        def _serve(self, work) -> None:
            try:
                work()
            except Refusal as refusal:
                self._answer(refusal.status, {"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                              "reason": refusal.reason, "message": refusal.message,
                                              "code": refusal.status})

        def do_GET(self) -> None:
            self._serve(self._get)

        def _get(self) -> None:
            kind, _, namespace, name, sub, query = self._route()
            if sub == "exec":
                self._exec(namespace, name, query.get("command", []))
            elif sub == "log":
                self._log(namespace, name, query)
            elif name is None:
                if urlsplit(self.path).path in cluster.forbidden_lists:
                    raise Refusal(403, "Forbidden", "User \"tester\" cannot list resource at the cluster scope")
                self._answer(200, cluster.listing(kind, namespace, query.get("labelSelector", [""])[0]))
            else:
                with cluster.lock:
                    found = cluster.objects.get((kind, namespace, name))
                if found is None:
                    raise Refusal(404, "NotFound", f'{kind} "{name}" not found')
                self._answer(200, found)

        def do_POST(self) -> None:
            def work():
                kind, version, namespace, _, _, _ = self._route()
                self._answer(201, cluster.create(kind, version, namespace, self._body()))
            self._serve(work)

        def do_PATCH(self) -> None:
            def work():
                kind, _, namespace, name, sub, _ = self._route()
                if not ((kind == "Deployment" and sub == "scale") or (kind in ("DaemonSet", "Namespace")
                                                                       and sub is None)):
                    raise Refusal(405, "MethodNotAllowed", "the fake patches only a deployment's scale, a "
                                  "daemonset and a namespace")
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    raise Refusal(415, "UnsupportedMediaType", "the fake takes merge patches only")
                if kind in ("DaemonSet", "Namespace"):
                    self._answer(200, cluster.patch(kind, namespace, name, self._body()))
                else:
                    self._answer(200, cluster.scale(namespace, name, self._body()))
            self._serve(work)

        def do_DELETE(self) -> None:
            def work():
                kind, _, namespace, name, _, _ = self._route()
                cluster.delete(kind, namespace, name)
                self._answer(200, {"apiVersion": "v1", "kind": "Status", "status": "Success"})
            self._serve(work)

        def _log(self, namespace: str, name: str, query: dict) -> None:
            with cluster.lock:
                pod = cluster.objects.get(("Pod", namespace, name))
            if pod is None:
                raise Refusal(404, "NotFound", f'pods "{name}" not found')
            node = pod["metadata"]["labels"]["lab.node"]
            text = cluster.logs.get(node, f"recorded log line of {node}\n")
            lines = text.splitlines(keepends=True)
            if "tailLines" in query:
                lines = lines[len(lines) - min(len(lines), int(query["tailLines"][0])):]
            if query.get("follow") == ["true"]:
                self._follow(namespace, name, node, "".join(lines).encode(), len(text))
            else:
                self._answer(200, "".join(lines).encode(), "text/plain")

        def _follow(self, namespace: str, pod: str, node: str, first: bytes, seen: int) -> None:
            """A followed log, as the kubelet serves it: chunks as lines are added (to cluster.logs),
            and the end of the stream once the pod is gone (its node stopped)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = first
            try:
                while True:
                    if chunk:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    time.sleep(0.05)
                    with cluster.lock:
                        if ("Pod", namespace, pod) not in cluster.objects or cluster.stopping:
                            break
                        text = cluster.logs.get(node, f"recorded log line of {node}\n")
                    chunk, seen = text[seen:].encode(), len(text)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass        # the client went away
            self.close_connection = True

        def _exec(self, namespace: str, pod: str, command: list[str]) -> None:
            if self.headers.get("Upgrade", "").lower() != "websocket":
                raise Refusal(400, "BadRequest", "exec needs a WebSocket upgrade")
            code, stdout, stderr = cluster.exec_answer(namespace, pod, command)
            accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WEBSOCKET_GUID)
                                                   .encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
            self.end_headers()
            status = ({"metadata": {}, "status": "Success"} if code == 0 else
                      {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})
            for channel, data in ((1, stdout.encode()), (2, stderr.encode()), (3, json.dumps(status).encode())):
                if data:
                    self.wfile.write(_frame(0x82, bytes([channel]) + data))
            self.wfile.write(_frame(0x88, (1000).to_bytes(2, "big")))
            self.wfile.flush()
            self.close_connection = True

    return Handler


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked WebSocket frame, as a server sends it (RFC 6455)."""
    size = len(payload)
    if size < 126:
        header = bytes([opcode, size])
    elif size < 1 << 16:
        header = bytes([opcode, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([opcode, 127]) + size.to_bytes(8, "big")
    return header + payload
