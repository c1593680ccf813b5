"""Orthanc's REST API over loopback HTTP, with the internal credential.

The services never run inside Orthanc (docs/architecture.md, decision 3): they reach it on its
internal port (``HttpPort``, loopback only) with the user and password that the launcher made
once and Orthanc accepts (``<StateDirectory>/internal-credential.json``). This module is shared by
the API service (asynchronous client) and the worker (synchronous client); it imports no web
framework, so the worker does not pull in FastAPI.

Errors are one small tree: :class:`OrthancUnreachable` (connection refused, time-out: worth a
retry, answered 503) and :class:`OrthancHttpError` (Orthanc answered with an error status).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

CREDENTIAL_FILE = "internal-credential.json"


class OrthancError(Exception):
    """Base of the errors of talking to Orthanc."""


class CredentialMissing(OrthancError):
    """The internal credential file is absent or unreadable: the launcher has not made it."""


class OrthancUnreachable(OrthancError):
    """Orthanc did not answer (not running, restarting, or too slow)."""


class OrthancHttpError(OrthancError):
    """Orthanc answered with an error status; ``message`` is Orthanc's own text (for logs)."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"Orthanc answered {status} to {method} {path}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        self.orthanc_status: int | None = None


@dataclass(frozen=True)
class InternalCredential:
    """The user and password Orthanc's ``RegisteredUsers`` holds for the services."""

    username: str
    password: str

    def __repr__(self) -> str:  # never print the password in a log or a traceback
        return f"InternalCredential(username={self.username!r}, password=***)"


def credential_path(state_directory: str | Path) -> Path:
    return Path(state_directory) / CREDENTIAL_FILE


def load_credential(state_directory: str | Path) -> InternalCredential:
    """Read ``<StateDirectory>/internal-credential.json``; fail clearly when it is not there."""
    path = credential_path(state_directory)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialMissing(
            f"{path} does not exist: the launcher (python -m archive_door run) writes it; "
            "start the archive with scripts/serve") from None
    except (OSError, ValueError) as exc:
        raise CredentialMissing(f"{path} cannot be read as JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), str) and raw.get(k) for k in ("username", "password")):
        raise CredentialMissing(f"{path} must be an object with 'username' and 'password' strings")
    return InternalCredential(raw["username"], raw["password"])


def orthanc_url(orthanc_config: Mapping[str, Any]) -> str:
    """``http://127.0.0.1:<HttpPort>``: Orthanc's internal port on loopback."""
    port = orthanc_config.get("HttpPort", 8042)
    return f"http://127.0.0.1:{int(port)}"


def _error(response: httpx.Response, method: str, path: str) -> OrthancHttpError:
    message = response.text[:500]
    orthanc_status: int | None = None
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("Message") or body.get("OrthancError") or message)
            code = body.get("OrthancStatus")
            orthanc_status = code if isinstance(code, int) else None
    except ValueError:
        pass
    error = OrthancHttpError(response.status_code, method, path, message)
    error.orthanc_status = orthanc_status
    return error


#: Orthanc closes an idle keep-alive connection after its ``KeepAliveTimeout`` (1 s by default).
#: A pooled connection kept longer is reused just as Orthanc closes it and the request fails with
#: a ReadError (seen under load); so the pool lets connections go sooner, and a request whose
#: connection broke before any answer is sent once more (every call we make is idempotent).
KEEPALIVE_EXPIRY = 0.5
LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=16,
                      keepalive_expiry=KEEPALIVE_EXPIRY)
_RETRIED = (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)


class AsyncOrthanc:
    """Asynchronous client for the API service (one connection pool per process)."""

    def __init__(self, base_url: str, credential: InternalCredential | None, *,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        auth = (credential.username, credential.password) if credential else None
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=timeout,
                                         transport=transport, limits=LIMITS)

    async def request(self, method: str, path: str, *, timeout: float | None = None,
                      json_body: Any = None, headers: Mapping[str, str] | None = None,
                      raw_query: str = "") -> httpx.Response:
        """One request; ``raw_query`` is sent byte for byte (no re-encoding: see qido.py)."""
        url = httpx.URL(self.base_url + path)
        if raw_query:
            url = url.copy_with(query=raw_query.encode("ascii"))
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            try:
                response = await self._client.request(method, url, json=json_body,
                                                      headers=dict(headers or {}), **kwargs)
            except _RETRIED:
                response = await self._client.request(method, url, json=json_body,
                                                      headers=dict(headers or {}), **kwargs)
        except httpx.TransportError as exc:
            raise OrthancUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response, method, path)
        return response

    async def store_instance(self, body: bytes | Callable[[], AsyncIterator[bytes]], size: int,
                             *, timeout: float = 600.0) -> httpx.Response:
        """``POST /instances`` of one instance's bytes, streamed when ``body`` is a factory of
        chunk iterators (called again for the one retry: the same bytes are stored once)."""
        headers = {"Content-Type": "application/dicom", "Content-Length": str(size)}

        async def send() -> httpx.Response:
            content = body if isinstance(body, bytes) else body()
            return await self._client.post("/instances", content=content, headers=headers,
                                           timeout=timeout)

        try:
            try:
                response = await send()
            except _RETRIED:
                response = await send()
        except httpx.TransportError as exc:
            raise OrthancUnreachable(f"POST /instances: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response, "POST", "/instances")
        return response

    async def get_json(self, path: str, *, timeout: float | None = None) -> Any:
        return (await self.request("GET", path, timeout=timeout)).json()

    async def post_json(self, path: str, body: Any, *, timeout: float | None = None) -> Any:
        return (await self.request("POST", path, json_body=body, timeout=timeout)).json()

    async def post_instance(self, data: bytes, *, timeout: float | None = None) -> Any:
        """``POST /instances`` with DICOM bytes: Orthanc's JSON answer (``{}`` when the ingest
        gate quarantined them). Not retried: a second send of a stored instance is harmless,
        but the caller should see the first failure."""
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = await self._client.post("/instances", content=data,
                                                headers={"Content-Type": "application/dicom"},
                                                **kwargs)
        except httpx.TransportError as exc:
            raise OrthancUnreachable(f"POST /instances: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response, "POST", "/instances")
        return response.json() if response.content else {}

    async def aclose(self) -> None:
        await self._client.aclose()


class SyncOrthanc:
    """Synchronous client for the worker, whose job handlers are plain functions."""

    def __init__(self, base_url: str, credential: InternalCredential | None, *,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None) -> None:
        auth = (credential.username, credential.password) if credential else None
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, auth=auth, timeout=timeout,
                                    transport=transport, limits=LIMITS)

    def request(self, method: str, path: str, *, json_body: Any = None) -> httpx.Response:
        try:
            try:
                response = self._client.request(method, path, json=json_body)
            except _RETRIED:
                response = self._client.request(method, path, json=json_body)
        except httpx.TransportError as exc:
            raise OrthancUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response, method, path)
        return response

    def get_json(self, path: str) -> Any:
        return self.request("GET", path).json()

    def post_json(self, path: str, body: Any = None) -> Any:
        response = self.request("POST", path, json_body=body)
        return response.json() if response.content else None

    def close(self) -> None:
        self._client.close()
