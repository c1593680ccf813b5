"""Shared fixtures: the whole archive (door, Orthanc with our plugin, API, worker) for the session.

Tests reach the archive as its users do, through the door (``archive.url``). Set-up and checks
that need Orthanc's own REST API (``/instances``, ``/tools/lookup``, ``/modalities`` …, all hidden
from the door) use ``archive.orthanc_url``: the ``http`` session adds the internal credential to
those requests only, and the test administrator's API key to the door (``archive.http`` does
the same for the door alone).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testkit.postgres import PostgresCluster
from testkit.stack import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration starts real processes: mark it so."""
    for item in items:
        if f"{os.sep}integration{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _plugin_logger_restored() -> Iterator[None]:
    """The plugin's bootstrap points the ``regional_archive`` logger at Orthanc and stops it
    propagating; put it back after each test, so caplog sees its records in every order."""
    logger = logging.getLogger("regional_archive")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARCHIVE_TEST_ARTIFACTS", "test-artifacts")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The archive as scripts/serve runs it (shipped config), on free loopback ports."""
    stack = Stack(tmp_path_factory.mktemp("archive")).start()
    try:
        yield stack
    finally:
        stack.stop()


class InternalAuthSession(requests.Session):
    """A session that sends the internal credential to Orthanc's internal port, and only there."""

    def __init__(self, orthanc_url: str, auth: tuple[str, str]) -> None:
        super().__init__()
        self._orthanc_url = orthanc_url.rstrip("/") + "/"
        self._auth = auth

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith(self._orthanc_url) and "auth" not in kwargs:
            kwargs["auth"] = self._auth
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def http(archive: Stack) -> Iterator[requests.Session]:
    with InternalAuthSession(archive.orthanc_url, archive.orthanc_auth) as session:
        # To the door as the test administrator (an explicit auth= still wins for Orthanc).
        session.headers.update(archive.http.headers)
        yield session


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 cluster for the session; ``postgres.url(name)`` makes a database."""
    with PostgresCluster() as cluster:
        yield cluster
