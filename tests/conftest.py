"""Shared fixtures: one real archive (Orthanc + our plugin) for the integration session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from testkit.archive_process import ArchiveProcess
from testkit.postgres import PostgresCluster


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARCHIVE_TEST_ARTIFACTS", "test-artifacts")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveProcess]:
    """The archive as scripts/serve runs it (shipped config), on free loopback ports."""
    proc = ArchiveProcess(tmp_path_factory.mktemp("archive")).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def http(archive: ArchiveProcess) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 cluster for the session; ``postgres.url(name)`` makes a database."""
    with PostgresCluster() as cluster:
        yield cluster
