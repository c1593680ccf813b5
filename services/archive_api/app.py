"""The FastAPI application: every route under ``/api``, built from dependencies passed in.

:func:`create_app` takes everything it talks to (the Orthanc client, the job queue, the outbox,
the service registry, the engines, the job kinds), so tests build it over real SQLite databases
and a real or absent Orthanc, and ``python -m archive_api`` builds it from the run folder
(:func:`archive_api.wiring.build`).

OpenAPI is generated from the code at ``/api/openapi.json``; ``/api/docs`` is Swagger UI and
``/api/redoc`` ReDoc, both served from the assets the ``fastapi-offline`` package ships (the
machine running the archive may have no route to a CDN).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from archive_config.config_check import Configuration
from archive_state.jobs import JobQueue
from archive_state.outbox import Outbox
from archive_state.quarantine import QuarantineIndex
from archive_state.services import ServiceRegistry
from archive_worker.kinds import KindInfo

from archive_audit.chain import AuditLog
from archive_audit.events import AuditEvent, Recorder
from archive_auth.service import AuthService
from archive_state.modalities import ModalityStore

from . import (admin_routes, audit_routes, auth_routes, authz, dicomweb, errors, jobs,
               modalities, package_version, quarantine, stow)
from .modality_sync import ModalitySync
from .health import HealthChecker
from .orthanc import AsyncOrthanc

log = logging.getLogger(__name__)

OPENAPI_URL = "/api/openapi.json"
DOCS_ASSETS = "/api/docs/assets"


@dataclass
class Dependencies:
    """What the API talks to; built by :func:`archive_api.wiring.build` or by a test."""

    orthanc: AsyncOrthanc
    jobs: JobQueue
    outbox: Outbox
    registry: ServiceRegistry
    control_engine: Engine
    state_engine: Engine
    kinds: Mapping[str, KindInfo]
    quarantine: QuarantineIndex | None = None
    supervisor_socket: Path | None = None
    door_url: str | None = None
    #: users, roles, sessions, tokens and API keys (the control database); the audit trail
    auth: AuthService | None = None
    recorder: Recorder | None = None
    audit: AuditLog | None = None
    modalities: ModalityStore | None = None
    #: where STOW-RS keeps parts too large for memory (unlinked temp files); default
    #: ``<StateDirectory>/tmp``
    temp_folder: Path | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class DiscardingRecorder:
    """For an app built without an audit trail (some tests): events go to the log only."""

    def record(self, event: AuditEvent) -> None:
        log.info("audit (not recorded): %s %s by %s", event.action, event.outcome, event.actor)


def _docs_assets() -> Path | None:
    try:
        path = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def create_app(config: Configuration, deps: Dependencies) -> FastAPI:
    """The ``/api`` application for one tenant's archive."""
    version = package_version()
    root = dicomweb.dicomweb_root(config.orthanc)
    probe = dicomweb.DecodingProbe(deps.orthanc, root)
    checker = HealthChecker(
        config=config, orthanc=deps.orthanc, registry=deps.registry, outbox=deps.outbox,
        control_engine=deps.control_engine, state_engine=deps.state_engine, probe=probe,
        version=version, supervisor_socket=deps.supervisor_socket, door_url=deps.door_url,
        clock=deps.clock)

    sync = ModalitySync(deps.modalities, deps.orthanc) if deps.modalities is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await probe.check()
        reconcile = asyncio.create_task(sync.run()) if sync is not None else None
        try:
            yield
        finally:
            if reconcile is not None:
                reconcile.cancel()
                with suppress(asyncio.CancelledError):
                    await reconcile
            await deps.orthanc.aclose()

    app = FastAPI(
        title="Regional archive API",
        version=version,
        description=(
            "Our HTTP API beside Orthanc's DICOMweb: health, background jobs, the quarantine of "
            "refused instances, STOW-RS with an outcome per instance and QIDO-RS with decoded "
            "query values. Errors are RFC 9457 problem details "
            "(`application/problem+json`)."),
        openapi_url=OPENAPI_URL, docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    errors.install(app)
    authz.install(app)
    app.state.health = checker
    app.state.qido_probe = probe
    recorder: Recorder = deps.recorder if deps.recorder is not None else DiscardingRecorder()
    security = config.archive.security
    auth = deps.auth if deps.auth is not None else AuthService.build(deps.control_engine, security)
    guard = authz.Authz(auth.authenticator, recorder, tenant=config.archive.tenant,
                        enabled=security.enabled)

    @app.get("/api/health", tags=["health"], summary="Every service, the platform, features",
             responses={503: {"description": "Some service is not ok (same body)"}})
    async def health() -> JSONResponse:
        document = await checker.document()
        return JSONResponse(document, status_code=200 if document["status"] == "ok" else 503)

    app.include_router(auth_routes.router(
        auth, guard, recorder, decision_cache_seconds=config.archive.door.auth_cache_seconds))
    app.include_router(admin_routes.router(auth, guard, recorder))
    app.include_router(jobs.router(deps.jobs, deps.kinds),
                       dependencies=[Depends(guard.require("configure"))])
    if deps.quarantine is not None:
        app.include_router(quarantine.router(deps.quarantine, deps.orthanc, guard.require,
                                             record=guard.record))
    if deps.modalities is not None:
        app.include_router(modalities.router(deps.modalities, deps.orthanc,
                                             guard.require("configure"), sync=sync,
                                             recorder=recorder))
    if deps.audit is not None:
        app.include_router(audit_routes.router(deps.audit, guard.require("audit-read"),
                                               record=guard.record))
    qido = dicomweb.QidoService(deps.orthanc, root, probe, dicomweb.qido_case_sensitive(
        config.orthanc))
    # The door checked a QIDO-RS search before rewriting it here; reached at /api/dicom-web/
    # directly, it is checked here.
    app.include_router(dicomweb.router(qido), dependencies=[Depends(guard.require("view"))])
    state_directory = Path(config.archive.state_directory)
    app.include_router(stow.router(stow.StowService(
        deps.orthanc, root, state_directory, deps.temp_folder or state_directory / "tmp",
        tenant=config.archive.tenant, quarantine=deps.quarantine, recorder=recorder),
        guard.principal_of))
    _docs(app)
    return app


def _docs(app: FastAPI) -> None:
    assets = _docs_assets()
    if assets is None:
        log.warning("fastapi-offline is not installed: /api/docs is off, "
                    "OpenAPI stays at %s", OPENAPI_URL)
        return
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    @app.get("/api/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL, title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()
