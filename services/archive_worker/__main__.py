"""``python -m archive_worker --config DATA/run/orthanc --name worker-1``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from archive_api import package_version
from archive_api.orthanc import CredentialMissing, SyncOrthanc, load_credential, orthanc_url
from archive_config.config_check import load
from archive_config.errors import ConfigError
from archive_config.settings import control_database_url, state_database_url
from archive_state.crash_watch import CrashWatch
from archive_state.db import make_engine
from archive_state.jobs import JobQueue
from archive_state.outbox import Outbox
from archive_state.quarantine import QuarantineIndex
from archive_state.quarantine_spool import folder_of
from archive_state.services import ServiceRegistry

from . import audit_dicom_log, audit_door_log, kinds
from .crash_guard import CrashGuard, Policy, door_log_path
from .runner import Worker

log = logging.getLogger("archive_worker")


#: How often the door's audit log is read into the audit trail.
AUDIT_DOOR_LOG_SECONDS = 60.0
#: How often Orthanc's log is read for DIMSE requests (Archive.Dicom.Audit).
AUDIT_DICOM_LOG_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archive_worker", description=__doc__)
    parser.add_argument("--config", required=True, type=Path,
                        help="the run folder's Orthanc configuration (DATA/run/orthanc)")
    parser.add_argument("--name", required=True, help="this worker's name: worker-1, worker-2 …")
    parser.add_argument("--kinds-module", action="append", default=[],
                        help="a module with KINDS: Mapping[str, handler] to run as well")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s {args.name} %(name)s: %(message)s")
    # httpx logs every request at INFO: one line per Orthanc call would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load(args.config)
        credential = load_credential(config.archive.state_directory)
        table = kinds.load(tuple(args.kinds_module))
    except (ConfigError, ValueError, OSError, CredentialMissing, kinds.KindsModuleError) as exc:
        print(f"archive_worker: {exc}", file=sys.stderr)
        return 1
    settings = config.archive
    state_engine = make_engine(state_database_url(settings))
    control_engine = make_engine(control_database_url(settings))
    orthanc = SyncOrthanc(orthanc_url(config.orthanc), credential)
    queue = JobQueue(state_engine, settings.tenant, settings.jobs)
    if settings.security.enabled:
        # The door's views and downloads reach the audit trail within a minute; each run
        # enqueues the next (one per slot, whichever worker runs it).
        audit_door_log.schedule(queue, AUDIT_DOOR_LOG_SECONDS)
    if settings.dicom_audit:
        # Every DIMSE request in Orthanc's log reaches the audit trail within a few minutes
        # (5-minute windows); one run per slot, whichever worker runs it.
        audit_dicom_log.schedule(queue, AUDIT_DICOM_LOG_SECONDS)
    guard_settings = settings.crash_guard
    door_log = door_log_path(guard_settings, dict(os.environ))
    crash_guard = None
    if guard_settings.enabled and door_log is not None:
        crash_guard = CrashGuard(CrashWatch(state_engine, settings.tenant), queue, door_log,
                                 Policy.of(guard_settings), guard_settings.poll_seconds,
                                 upstream_prefix=orthanc_url(config.orthanc) + "/")
    elif guard_settings.enabled:
        log.warning("crash guard off: no Archive.CrashGuard.DoorLog and no ARCHIVE_DATA")
    worker = Worker(
        name=args.name, settings=settings,
        queue=queue,
        outbox=Outbox(state_engine, settings.tenant, owner=args.name),
        registry=ServiceRegistry(control_engine), orthanc=orthanc, kinds=table,
        version=package_version(),
        quarantine=QuarantineIndex(state_engine, settings.tenant,
                                   folder_of(settings.state_directory)),
        progress_interval=min(1.0, settings.jobs.lease_seconds / 3), crash_guard=crash_guard)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current step", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return worker.run()
    finally:
        orthanc.close()
        state_engine.dispose()
        control_engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
