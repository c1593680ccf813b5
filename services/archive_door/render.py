"""Write the run folder, all of it or nothing: a sysadmin (or a process) never reads half a set.

Everything is written into a fresh folder beside ``DATA/run`` and then put in its place with two
renames; the previous folder is removed afterwards. Only the launcher writes here, and only while
no supervisord of this data folder runs (:func:`archive_door.launcher.check_not_running`).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from archive_config.config_check import Configuration

from . import nginx, orthanc_config, programs, supervisor, tls, viewer
from .credential import Credential
from .layout import CONSOLE_BUILD, Executables, Layout

log = logging.getLogger(__name__)

#: nginx's temporary folders (each compiled-in default is outside the run folder).
NGINX_TEMP = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Rendered:
    layout: Layout
    programs: list[programs.Program]
    environment: dict[str, str]
    certificate: tls.CertificatePair | None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _fill(stage: Path, configuration: Configuration, env: Mapping[str, str], layout: Layout,
          credential: Credential, executables: Executables, console_build: Path) -> Rendered:
    settings = configuration.archive
    source = configuration.section_file
    orthanc_files = orthanc_config.render(configuration.path, env, credential)
    orthanc_config.write(stage / "orthanc", orthanc_files)

    build: Path | None = None
    if settings.viewer.enabled:
        build = viewer.write_viewer_files(settings.viewer, stage / "ohif", source)

    certificate: tls.CertificatePair | None = None
    if settings.door.https.enabled:
        given = tls.configured(settings.door.https, layout.generated_tls, source)
        (stage / "tls").mkdir(mode=0o700)
        certificate = tls.CertificatePair(layout.tls / tls.CERTIFICATE, layout.tls / tls.KEY)
        shutil.copyfile(given.certificate, stage / "tls" / tls.CERTIFICATE)
        _write_private(stage / "tls" / tls.KEY, given.key.read_text(encoding="utf-8"))

    door = nginx.render_door(
        settings=settings, orthanc=configuration.orthanc, layout=layout, credential=credential,
        viewer_build=build, console_build=console_build, certificate=certificate,
        config_path=configuration.path)
    _write_private(stage / layout.nginx_conf.name, door.nginx_conf)
    _write_private(stage / layout.nginx_routes.name, door.routes_conf)

    listed = programs.programs(settings, layout, executables)
    environment = programs.common_environment(layout, executables)
    (stage / layout.supervisord_conf.name).write_text(
        supervisor.render_supervisord(layout, listed, environment, f"archive-{settings.tenant}",
                                      user="root" if os.geteuid() == 0 else None),
        encoding="utf-8")

    writable = [stage / "tmp", stage / "cache"]
    writable += [stage / "tmp" / name for name in NGINX_TEMP] + [stage / "cache" / "auth"]
    for folder in writable:
        folder.mkdir(exist_ok=True)
    # Orthanc's TMPDIR: empty (the run folder is new) and its user's alone (chmod: the umask).
    orthanc_tmp = stage / layout.orthanc_tmp.relative_to(layout.run)
    orthanc_tmp.mkdir(mode=0o700)
    orthanc_tmp.chmod(0o700)
    return Rendered(layout, listed, environment, certificate)


def render_run_folder(configuration: Configuration, env: Mapping[str, str], layout: Layout,
                      credential: Credential, executables: Executables,
                      console_build: Path = CONSOLE_BUILD) -> Rendered:
    """Render ``layout.run`` from the configuration; returns what supervisord will run."""
    layout.data.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".run-new-", dir=layout.data))
    try:
        stage.chmod(0o755)
        rendered = _fill(stage, configuration, env, layout, credential, executables, console_build)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old: Path | None = None
    if layout.run.exists():
        old = Path(tempfile.mkdtemp(prefix=".run-old-", dir=layout.data))
        os.rename(layout.run, old / "run")
    os.rename(stage, layout.run)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("rendered %s", layout.run)
    return rendered
