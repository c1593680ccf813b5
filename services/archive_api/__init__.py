"""The API service: ``/api`` (health, jobs, QIDO-RS decoding, OpenAPI) on loopback, behind nginx.

``python -m archive_api --config DATA/run/orthanc`` runs :func:`archive_api.app.create_app` on
uvicorn at ``127.0.0.1:<Archive.Api.Port>``. The service talks to Orthanc over its REST API with
the internal credential (:mod:`archive_api.orthanc`) and to the databases through
:mod:`archive_state`; it never runs inside Orthanc (docs/architecture.md, decision 3).
"""

from importlib import metadata


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), as health reports it."""
    try:
        return metadata.version("regional-archive")
    except metadata.PackageNotFoundError:
        return "0+unknown"
