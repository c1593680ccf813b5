"""A private PostgreSQL cluster for tests: Debian's PostgreSQL 15 binaries, a temporary folder,
a free loopback port, its unix socket in that folder.

PostgreSQL refuses to run as root, so under root every server command runs as the ``postgres``
system user (``runuser -u postgres --``) in a folder that user owns. The cluster is made fast and
throw-away (``fsync=off``, trust authentication on loopback only) and is stopped with
``pg_ctl stop -m fast`` on its own data folder, never by process name: other clusters may run.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    """The cluster could not be made, started or reached."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """``with PostgresCluster() as pg: url = pg.url("jobs")``."""

    def __init__(self, bin_dir: Path = PG_BIN, system_user: str = "postgres") -> None:
        self.bin_dir = bin_dir
        self.system_user = system_user
        self.port = 0
        self.base: Path | None = None
        self._running = False

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base() / "socket"

    @property
    def log_path(self) -> Path:
        return self._base() / "postgres.log"

    def _base(self) -> Path:
        if self.base is None:
            raise PostgresError("the cluster has not been started")
        return self.base

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.system_user, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        done = subprocess.run(self._as_owner(*args), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise PostgresError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self, timeout: float = 30.0) -> PostgresCluster:
        initdb = self.bin_dir / "initdb"
        if not initdb.exists():
            raise PostgresError(f"{initdb} is missing: apt-get install postgresql (version 15)")
        # /tmp, not pytest's 0700 root-owned folders: the postgres user must reach the socket.
        self.base = Path(tempfile.mkdtemp(prefix="archive-pg-"))
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.base, user=self.system_user)
            shutil.chown(self.socket_dir, user=self.system_user)
        self._run(
            str(initdb), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )
        self.port = free_port()
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=100",
            ]
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
            "-o", options, "-W", "start",
        )
        self._running = True
        self._wait_ready(timeout)
        logger.info("PostgreSQL on 127.0.0.1:%s (%s)", self.port, self.data_dir)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        raise PostgresError(f"PostgreSQL did not accept connections in {timeout} s: {last}\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def url(self, dbname: str, *, template: str | None = None) -> str:
        """An SQLAlchemy URL of database ``dbname``, created if it does not exist: empty, or a
        copy of database ``template`` (a file copy, much faster than migrating again; nobody may
        be connected to the template meanwhile)."""
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if exists is None:
                create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
                if template is not None:
                    create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                conn.execute(create)
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        if self.base is None:
            return
        if self._running:
            try:
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
            finally:
                self._running = False
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
