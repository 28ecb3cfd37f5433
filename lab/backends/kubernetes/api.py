"""Talking to the cluster: the official client's configuration, auth and TLS, with raw REST paths.

The objects `lab export kubernetes` renders are sent exactly as rendered (plain
dicts), never converted into the client's models and back, so what the API
receives is what the unit tests validate. Answers are plain dicts too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import kubernetes.client
import kubernetes.config
import urllib3.exceptions

from lab.errors import RuntimeFailure

REQUEST_TIMEOUT_SECONDS = 30
MERGE_PATCH = "application/merge-patch+json"


class NotFound(RuntimeFailure):
    """The API answered 404: the object is not there."""


class ApiFailure(RuntimeFailure):
    """The API refused a call; the message is the API's own reason."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def kubeconfig_path() -> Path | None:
    """The kubeconfig the client would read (KUBECONFIG's first file, else ~/.kube/config), if present."""
    named = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = Path(named).expanduser() if named else Path("~/.kube/config").expanduser()
    return path if path.is_file() else None


def connect(context: str | None = None) -> kubernetes.client.ApiClient:
    """An API client for the kubeconfig's context (its current one unless named)."""
    path = kubeconfig_path()
    if path is None:
        raise RuntimeFailure("no kubeconfig found (KUBECONFIG or ~/.kube/config): the kubernetes backend "
                             "needs a cluster; point KUBECONFIG at one")
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=str(path), context=context,
                                           client_configuration=configuration)
    except (kubernetes.config.ConfigException, ValueError, OSError) as error:
        raise RuntimeFailure(f"cannot use the kubeconfig {path}"
                             f"{f' (context {context})' if context else ''}: {error}") from None
    return kubernetes.client.ApiClient(configuration)


def _reason(data: bytes, status: int) -> str:
    try:
        return json.loads(data).get("message") or f"HTTP {status}"
    except (ValueError, AttributeError):
        return f"HTTP {status}: {data[:200].decode(errors='replace')}"


def call(api: kubernetes.client.ApiClient, method: str, path: str, what: str, query: dict | None = None,
         body: dict | None = None, content_type: str = "application/json") -> dict:
    """One REST call; its JSON answer. NotFound for 404, ApiFailure (with the API's words) otherwise."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        method, url, headers, body, _ = api.param_serialize(
            method=method, resource_path=path, query_params=list((query or {}).items()),
            header_params=headers, body=body, auth_settings=["BearerToken"])
        response = api.call_api(method, url, header_params=headers, body=body,
                                _request_timeout=REQUEST_TIMEOUT_SECONDS)
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise RuntimeFailure(f"{what}: the cluster's API did not answer ({error.__class__.__name__}: "
                             f"{error}); is the cluster up (kubectl cluster-info)?") from None
    if response.status == 404:
        raise NotFound(f"{what}: not found ({_reason(data, 404)})")
    if response.status >= 400:
        raise ApiFailure(f"{what}: the cluster refused it ({_reason(data, response.status)})", response.status)
    return json.loads(data) if data else {}


def stream_text(api: kubernetes.client.ApiClient, path: str, what: str, query: dict) -> Iterator[bytes]:
    """A call whose answer goes on until the server ends it (a followed log): its bytes as they come."""
    try:
        method, url, headers, _, _ = api.param_serialize(
            method="GET", resource_path=path, query_params=list(query.items()),
            header_params={"Accept": "*/*"}, auth_settings=["BearerToken"])
        # No read timeout: a quiet node's log may say nothing for hours.
        response = api.call_api(method, url, header_params=headers,
                                _request_timeout=(REQUEST_TIMEOUT_SECONDS, None))
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise RuntimeFailure(f"{what}: the cluster's API did not answer ({error})") from None
    if response.status >= 400:
        raise ApiFailure(f"{what}: the cluster refused it ({_reason(response.read(), response.status)})",
                         response.status)
    raw = response.response
    try:
        yield from raw.stream(amt=None, decode_content=True) if raw.chunked else iter(lambda: raw.read1(65536), b"")
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise RuntimeFailure(f"{what}: the stream from the cluster broke off ({error})") from None
    finally:
        raw.release_conn()


def read_text(api: kubernetes.client.ApiClient, path: str, what: str, query: dict | None = None) -> bytes:
    """A call whose answer is text (a pod's log)."""
    try:
        method, url, headers, _, _ = api.param_serialize(
            method="GET", resource_path=path, query_params=list((query or {}).items()),
            header_params={"Accept": "*/*"}, auth_settings=["BearerToken"])
        response = api.call_api(method, url, header_params=headers, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise RuntimeFailure(f"{what}: the cluster's API did not answer ({error})") from None
    if response.status >= 400:
        raise ApiFailure(f"{what}: the cluster refused it ({_reason(data, response.status)})", response.status)
    return data
