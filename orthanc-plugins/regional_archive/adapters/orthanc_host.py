"""The :class:`~regional_archive.features.PluginHost` that talks to Orthanc's Python SDK."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ArchiveError, BadRequest, NotFound
from ..http import Handler, Request, Response, error_response

log = logging.getLogger(__name__)


class OrthancHost:
    """Registers routes and reads Orthanc's REST API in-process through the SDK module."""

    def __init__(self, sdk: Any) -> None:
        self._sdk = sdk
        self._routes: dict[str, dict[str, Handler]] = {}

    def add_route(self, methods: Sequence[str], uri_regex: str, handler: Handler) -> None:
        table = self._routes.get(uri_regex)
        if table is None:
            table = self._routes[uri_regex] = {}
            self._sdk.RegisterRestCallback(uri_regex, self._make_callback(table))
        for method in methods:
            table[method.upper()] = handler

    def rest_get_json(self, uri: str) -> Any:
        try:
            return json.loads(self._sdk.RestApiGet(uri))
        except self._sdk.OrthancException:
            return None

    def rest_get_after_plugins(self, uri: str) -> bytes:
        try:
            return bytes(self._sdk.RestApiGetAfterPlugins(uri))
        except self._sdk.OrthancException as exc:
            raise self._translate(exc, uri) from exc

    def dicomweb_root(self) -> str:
        configuration = json.loads(self._sdk.GetConfiguration())
        root = (configuration.get("DicomWeb") or {}).get("Root", "/dicom-web/")
        return str(root)

    def _translate(self, exc: Exception, uri: str) -> ArchiveError:
        code = exc.args[0] if exc.args else None
        errors = self._sdk.ErrorCode
        text = f"{uri}: {exc.args[1] if len(exc.args) > 1 else exc}"
        if code in (errors.UNKNOWN_RESOURCE, errors.INEXISTENT_ITEM):
            return NotFound(text)
        if code in (errors.BAD_REQUEST, errors.BAD_FILE_FORMAT, errors.PARAMETER_OUT_OF_RANGE,
                    errors.BAD_PARAMETER_TYPE):
            return BadRequest(text)
        return ArchiveError(text)

    def _make_callback(self, table: dict[str, Handler]) -> Any:
        def callback(output: Any, uri: str, **request: Any) -> None:
            method = str(request.get("method", "GET")).upper()
            handler = table.get(method)
            if handler is None:
                output.SendMethodNotAllowed(",".join(sorted(table)))
                return
            req = Request(
                method=method,
                path=uri,
                groups=tuple(request.get("groups") or ()),
                query=dict(request.get("get") or {}),
                headers={k.lower(): v for k, v in (request.get("headers") or {}).items()},
                body=request.get("body") or b"",
            )
            try:
                response = handler(req)
            except Exception as exc:  # translated once, here, into an HTTP answer
                if not isinstance(exc, ArchiveError):
                    log.exception("unhandled error on %s %s", method, uri)
                response = error_response(exc)
            self._write(output, response)

        return callback

    @staticmethod
    def _write(output: Any, response: Response) -> None:
        for name, value in response.headers.items():
            output.SetHttpHeader(name, value)
        if response.status == 200:
            output.AnswerBuffer(response.body, response.content_type)
        else:
            # Python plugin 4.0 takes the body of an error answer as str, with its size in bytes.
            output.SetHttpHeader("Content-Type", response.content_type)
            text = response.body.decode("utf-8", errors="replace")
            output.SendHttpStatus(response.status, text, len(text.encode("utf-8")))

