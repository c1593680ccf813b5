"""An API or worker environment for unit tests: a real configuration folder and real SQLite
state and control databases brought to the schema by the real migrations.

Orthanc is *absent* here (its port has nothing listening) or *hanging* (a socket that accepts
and never answers): the unit tests check what the service does without it; the integration tests
run a real Orthanc.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from archive_api.app import Dependencies, create_app
from archive_api.orthanc import AsyncOrthanc, InternalCredential
from archive_api.wiring import kind_infos
from archive_audit.events import AuditEvent
from archive_auth.service import AuthService
from archive_config.config_check import Configuration, load
from archive_config.settings import control_database_url, state_database_url
from archive_state.db import make_engine, migrate
from archive_state.jobs import JobQueue
from archive_state.outbox import Outbox
from archive_state.quarantine import QuarantineIndex
from archive_state.quarantine_spool import folder_of
from archive_state.services import ServiceRegistry
from testkit.orthanc_process import free_port


def write_config(folder: Path, state: Path, *, http_port: int,
                 archive: Mapping[str, Any] | None = None) -> Configuration:
    folder.mkdir(parents=True, exist_ok=True)
    section: dict[str, Any] = {"StateDirectory": str(state), "Viewer": {"Enabled": False},
                               **(archive or {})}
    (folder / "orthanc.json").write_text(json.dumps(
        {"HttpPort": http_port, "DicomWeb": {"Root": "/dicom-web/"}, "Archive": section}))
    state.mkdir(parents=True, exist_ok=True)
    return load(folder, env={})


@dataclass
class ListRecorder:
    """The app's audit trail in these tests: the events, in order."""

    events: list[AuditEvent] = field(default_factory=list)

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


@dataclass
class Env:
    config: Configuration
    deps: Dependencies
    #: an API key of the admin role in the control database, for routes that need permissions
    admin_key: str
    #: what the app recorded in its audit trail
    audit: ListRecorder

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    @property
    def queue(self) -> JobQueue:
        return self.deps.jobs

    def app(self) -> FastAPI:
        return create_app(self.config, self.deps)


def make_env(tmp: Path, *, orthanc_port: int | None = None,
             archive: Mapping[str, Any] | None = None,
             door_url: str | None = None) -> Env:
    port = orthanc_port or free_port()
    config = write_config(tmp / "config", tmp / "state", http_port=port, archive=archive)
    settings = config.archive
    for url, tree in ((state_database_url(settings), "state"),
                      (control_database_url(settings), "control")):
        migrate(url, tree)  # type: ignore[arg-type]
    state_engine = make_engine(state_database_url(settings))
    control_engine = make_engine(control_database_url(settings))
    recorder = ListRecorder()
    deps = Dependencies(
        orthanc=AsyncOrthanc(f"http://127.0.0.1:{port}", InternalCredential("u", "p"),
                             timeout=5.0),
        jobs=JobQueue(state_engine, settings.tenant, settings.jobs),
        outbox=Outbox(state_engine, settings.tenant),
        registry=ServiceRegistry(control_engine),
        control_engine=control_engine, state_engine=state_engine,
        kinds=kind_infos(()), door_url=door_url,
        quarantine=QuarantineIndex(state_engine, settings.tenant,
                                   folder_of(settings.state_directory)),
        recorder=recorder)
    admin_key, _ = AuthService.build(control_engine, settings.security).api_keys.create(
        "unit-tests", ["admin"], tenants=None, created_by="tests")
    return Env(config, deps, admin_key, recorder)


@contextmanager
def hanging_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])
