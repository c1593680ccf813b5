"""Start the archive: check, prepare, render, then become supervisord.

The order is the contract of ``docs/architecture.md`` ("The run folder"): a configuration error
stops everything before anything runs (exit 2, naming the key); the internal credential is made
once; the migrations run before any service could use a database; the run folder is rendered;
supervisord replaces this process (``exec``), so Ctrl-C or SIGTERM to this PID stops every
program in order and nothing is left behind.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from archive_config.config_check import Configuration, load
from archive_config.settings import ArchiveSettings, control_database_url, state_database_url

from . import credential
from .errors import AlreadyRunning, AuditKeyMismatch, ToolMissing
from .layout import REPO, Executables, Layout
from .ports import check_ports
from .render import Rendered, render_run_folder

log = logging.getLogger(__name__)

PlatformName = Literal["bookworm", "trixie"]
TRIXIE_ORTHANC = REPO / "scripts" / "orthanc-trixie"
TRIXIE_VENV = REPO / ".cache" / "trixie" / "venv"


@dataclass(frozen=True)
class Prepared:
    configuration: Configuration
    layout: Layout
    environment: dict[str, str]
    rendered: Rendered


def environment(data: Path, platform: PlatformName | None, base: Mapping[str, str]) -> dict[str, str]:
    """The environment the configuration is expanded with and the programs inherit."""
    env = dict(base)
    env["ARCHIVE_HOME"] = str(REPO)
    env["ARCHIVE_DATA"] = str(data)
    if platform == "trixie":
        env.setdefault("ARCHIVE_ORTHANC", str(TRIXIE_ORTHANC))
        env.setdefault("ARCHIVE_PLUGIN_VENV", str(TRIXIE_VENV))
    if platform:
        env["ARCHIVE_PLATFORM"] = platform
    return env


def check_not_running(layout: Layout) -> None:
    """Refuse to re-render under a running supervisord of the same data folder."""
    path = layout.supervisor_socket
    if not path.exists():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return  # left over from a run that was killed
    raise AlreadyRunning(f"an archive already runs on {layout.data} (its supervisord answers on {path})")


def check_executables(executables: Executables) -> None:
    for what, command in (("Orthanc", executables.orthanc), ("nginx", executables.nginx)):
        if shutil.which(command) is None:
            raise ToolMissing(f"{what} not found at {command!r}: run scripts/setup")
    for shim in (executables.thread_stack_shim, executables.charls_route_shim,
                 executables.quick_ack_shim):
        if not shim.is_file():
            raise ToolMissing(f"{shim} is missing: run scripts/setup")


def migrate(settings: ArchiveSettings) -> None:
    from archive_state.db import migrate as run_migrations

    Path(settings.state_directory).mkdir(parents=True, exist_ok=True)
    # archive_state logs the revision each database is at.
    run_migrations(control_database_url(settings), "control")
    run_migrations(state_database_url(settings), "state")


def check_audit_key(settings: ArchiveSettings) -> None:
    """The audit trail's key in the state folder, made for a new trail; every archive of one
    control database must hold the same key (docs/security.md, "Several archives, one
    region")."""
    from archive_audit.chain import AuditKeyError, check_key, key_path
    from archive_state.db import make_engine

    engine = make_engine(control_database_url(settings))
    try:
        check_key(engine, key_path(settings.state_directory))
    except AuditKeyError as exc:
        raise AuditKeyMismatch(str(exc)) from None
    finally:
        engine.dispose()


def operating_user() -> str:
    """Who started the archive, as the system knows them (a container may run an unnamed uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def record_configuration(configuration: Configuration) -> None:
    """A ``config-change`` audit row for what was edited in the configuration files since the
    last start (:mod:`archive_audit.config_changes`); the first start records the key count."""
    from archive_audit.chain import AuditLog, key_path, load_or_create_key
    from archive_audit.config_changes import audit_start
    from archive_state.db import make_engine

    settings = configuration.archive
    engine = make_engine(control_database_url(settings))
    try:
        trail = AuditLog(engine, load_or_create_key(key_path(settings.state_directory)))
        audit_start(configuration.orthanc, Path(settings.state_directory), trail,
                    tenant=settings.tenant, actor=operating_user(),
                    source=str(configuration.path))
    finally:
        engine.dispose()


def prepare(config: Path, data: Path, platform: PlatformName | None = None,
            base_env: Mapping[str, str] | None = None, *, run_migrations: bool = True) -> Prepared:
    data = data.resolve()
    env = environment(data, platform, os.environ if base_env is None else base_env)
    configuration = load(config.resolve(), env)
    settings = configuration.archive
    check_ports(configuration.orthanc, settings, str(configuration.path))
    layout = Layout(home=REPO, data=data, state=Path(settings.state_directory))
    executables = Executables.from_environment(env)
    check_executables(executables)
    check_not_running(layout)
    made = credential.ensure(layout.credential)
    if run_migrations:
        migrate(settings)
        check_audit_key(settings)
        record_configuration(configuration)
    rendered = render_run_folder(configuration, env, layout, made, executables)
    env.update(rendered.environment)
    return Prepared(configuration, layout, env, rendered)


def door_urls(settings: ArchiveSettings) -> list[str]:
    """Where a browser reaches the door, as the user should type it."""
    door = settings.door
    hosts = [door.listen_address]
    if door.listen_address in ("0.0.0.0", "::", "[::]"):
        hosts = [socket.gethostname(), "127.0.0.1"]
    elif ":" in door.listen_address:
        hosts = [f"[{door.listen_address}]"]
    urls = []
    for host in hosts:
        if not (door.https.enabled and door.https.redirect_http):
            urls.append(f"http://{host}:{door.http_port}/")
        if door.https.enabled:
            urls.append(f"https://{host}:{door.https.port}/")
    return urls


def supervisord_command(layout: Layout) -> list[str]:
    beside = Path(sys.executable).parent / "supervisord"
    program = [str(beside)] if beside.is_file() else [sys.executable, "-m", "supervisor.supervisord"]
    return [*program, "-n", "-c", str(layout.supervisord_conf)]


def exec_supervisord(prepared: Prepared) -> NoReturn:
    command = supervisord_command(prepared.layout)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0] if os.path.isabs(command[0]) else shutil.which(command[0]) or command[0],
              command, prepared.environment)
