"""Build the API's dependencies from the run folder's configuration (no I/O at import).

The configuration is the run folder's ``orthanc/`` (already expanded by the launcher); the
internal credential is read from ``<StateDirectory>/internal-credential.json`` and its absence
stops the service with a message saying who writes it. ``$ARCHIVE_RUN/supervisor.sock`` is used
for process states when it exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI

from archive_audit.chain import AuditLog, key_path, load_or_create_key
from archive_auth.service import AuthService
from archive_config.config_check import Configuration, load
from archive_config.settings import control_database_url, state_database_url
from archive_state.db import make_engine
from archive_state.jobs import JobQueue
from archive_state.modalities import ModalityStore
from archive_state.outbox import Outbox
from archive_state.quarantine import QuarantineIndex
from archive_state.quarantine_spool import folder_of
from archive_state.services import ServiceRegistry
from archive_worker import kinds as worker_kinds

from .app import Dependencies, create_app
from .health import door_health_url
from .orthanc import AsyncOrthanc, load_credential, orthanc_url

log = logging.getLogger(__name__)

#: How ``python -m archive_api`` hands its arguments to uvicorn's worker processes.
CONFIG_ENV = "ARCHIVE_API_CONFIG"
KINDS_ENV = "ARCHIVE_API_KINDS_MODULES"


def kind_infos(extra_modules: Sequence[str]) -> Mapping[str, worker_kinds.KindInfo]:
    return {name: worker_kinds.info(name) for name in worker_kinds.load(tuple(extra_modules))}


def build(config: Configuration, *, extra_kinds: Sequence[str] = (),
          env: Mapping[str, str] | None = None) -> Dependencies:
    environ = os.environ if env is None else env
    settings = config.archive
    credential = load_credential(settings.state_directory)
    state_engine = make_engine(state_database_url(settings))
    control_engine = make_engine(control_database_url(settings))
    run = environ.get("ARCHIVE_RUN")
    audit = AuditLog(control_engine, load_or_create_key(key_path(settings.state_directory)))
    return Dependencies(
        orthanc=AsyncOrthanc(orthanc_url(config.orthanc), credential),
        jobs=JobQueue(state_engine, settings.tenant, settings.jobs),
        outbox=Outbox(state_engine, settings.tenant),
        registry=ServiceRegistry(control_engine),
        control_engine=control_engine,
        state_engine=state_engine,
        kinds=kind_infos(extra_kinds),
        quarantine=QuarantineIndex(state_engine, settings.tenant,
                                   folder_of(settings.state_directory)),
        supervisor_socket=Path(run) / "supervisor.sock" if run else None,
        door_url=door_health_url(config),
        temp_folder=Path(run) / "tmp" / "stow" if run else None,
        auth=AuthService.build(control_engine, settings.security),
        recorder=audit,
        audit=audit,
        modalities=ModalityStore(state_engine, settings.tenant),
    )


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process (``--workers`` = ``Archive.Api.Processes``)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load(Path(os.environ[CONFIG_ENV]))
    extra = [m for m in os.environ.get(KINDS_ENV, "").split(",") if m]
    return create_app(config, build(config, extra_kinds=extra))
