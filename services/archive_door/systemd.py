"""systemd units for production: the same processes as supervisord, supervised by the init system.

``python -m archive_door systemd --config CONFIG --data DATA --out DIR`` writes:

- ``archive.target``, wanted by ``multi-user.target``: ``systemctl enable --now archive.target``
  starts everything, and everything is back after a reboot with nobody touching it (004 4.2);
- ``archive-render.service`` (oneshot): the launcher's ``render`` (check, migrate, write
  ``DATA/run``), which every other unit requires and follows;
- ``archive-orthanc.service``, ``archive-api.service``, ``archive-worker@.service`` (one instance
  per ``Archive.Jobs.Workers``: ``archive-worker@1`` …) and ``archive-door.service``, each
  ``Restart=always``, running exactly the commands of :mod:`.programs`.

Copy them to ``/etc/systemd/system/``, ``systemctl daemon-reload``, then enable the target.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping, Sequence
from pathlib import Path

from archive_config.config_check import load

from .launcher import PlatformName, environment
from .layout import REPO, Executables, Layout
from .programs import UMASK, Program, common_environment, programs

TARGET = "archive.target"
RENDER = "archive-render.service"


def _word(word: str) -> str:
    """One argument of ExecStart= (systemd.service "Command lines"): quoted, % and $ escaped."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _exec(words: Sequence[str]) -> str:
    return " ".join(_word(w) for w in words)


def _environment_lines(env: Mapping[str, str]) -> list[str]:
    lines = []
    for key, value in env.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
        lines.append(f'Environment="{key}={escaped}"')
    return lines


def _unit(description: str, service: list[str], *, after: Sequence[str], requires: Sequence[str] = ()) -> str:
    lines = [
        "# Written by `python -m archive_door systemd`; regenerate rather than edit.",
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        f"After={' '.join(['network-online.target', *after])}",
    ]
    if requires:
        lines.append(f"Requires={' '.join(requires)}")
    lines += [f"PartOf={TARGET}", "", "[Service]", *service, "", "[Install]", f"WantedBy={TARGET}", ""]
    return "\n".join(lines)


def _program_service(program: Program, env: Mapping[str, str], user: str, layout: Layout) -> list[str]:
    return [
        "Type=simple",
        f"User={user}",
        f"WorkingDirectory={layout.data}",
        *_environment_lines({**env, **program.environment}),
        f"ExecStart={_exec(program.command)}",
        "Restart=always",
        "RestartSec=2s",
        f"KillSignal=SIG{program.stop_signal}",
        f"TimeoutStopSec={program.stop_wait_seconds}s",
        "LimitNOFILE=65536",
        f"UMask={UMASK}",
    ]


def units(config: Path, data: Path, *, platform: PlatformName | None = None, user: str | None = None,
          base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Unit file name → content."""
    data = data.resolve()
    env = environment(data, platform, os.environ if base_env is None else base_env)
    settings = load(config.resolve(), env).archive
    layout = Layout(home=REPO, data=data, state=Path(settings.state_directory))
    executables = Executables.from_environment(env)
    user = user or pwd.getpwuid(os.geteuid()).pw_name
    common = common_environment(layout, executables)
    if platform:
        common["ARCHIVE_PLATFORM"] = platform
    listed = {p.name: p for p in programs(settings, layout, executables)}
    render_command = (executables.python, "-m", "archive_door", "render", "--config",
                      str(config.resolve()), "--data", str(data),
                      *(("--platform", platform) if platform else ()))
    out: dict[str, str] = {}
    out[RENDER] = _unit(
        "Regional archive: check the configuration, migrate the databases, render the run folder",
        ["Type=oneshot", "RemainAfterExit=yes", f"User={user}",
         *_environment_lines({k: v for k, v in env.items() if k.startswith("ARCHIVE_")}),
         f"ExecStart={_exec(render_command)}"],
        after=())
    order = [RENDER]
    for name, description in (("orthanc", "Orthanc (DICOM, DICOMweb)"), ("api", "API service")):
        unit = f"archive-{name}.service"
        out[unit] = _unit(f"Regional archive: {description}",
                          _program_service(listed[name], common, user, layout),
                          after=order, requires=[RENDER])
        order = [*order, unit]
    worker = listed["worker-1"]
    template = Program(worker.name, tuple("worker-%i" if w == "worker-1" else w for w in worker.command),
                       worker.environment, stop_signal=worker.stop_signal,
                       stop_wait_seconds=worker.stop_wait_seconds)
    service = _program_service(template, common, user, layout)
    # %i must reach systemd unescaped: it is the instance (worker number).
    service = [line.replace("worker-%%i", "worker-%i") for line in service]
    out["archive-worker@.service"] = _unit("Regional archive: job worker %i", service,
                                           after=order, requires=[RENDER])
    out["archive-door.service"] = _unit("Regional archive: the door (nginx)",
                                        [*_program_service(listed["door"], common, user, layout),
                                         "ExecReload=/bin/kill -HUP $MAINPID"],
                                        after=order, requires=[RENDER])
    workers = [f"archive-worker@{n}.service" for n in range(1, settings.jobs.workers + 1)]
    wanted = [RENDER, "archive-orthanc.service", "archive-api.service", *workers, "archive-door.service"]
    out[TARGET] = "\n".join([
        "# Written by `python -m archive_door systemd`; regenerate rather than edit.",
        "# systemctl enable --now archive.target   starts the archive now and at every boot.",
        "[Unit]",
        "Description=Regional archive (Orthanc, API service, workers, the door)",
        f"Wants={' '.join(wanted)}",
        "After=network-online.target",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])
    return out


def write_units(config: Path, data: Path, out: Path, *, platform: PlatformName | None = None,
                user: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units(config, data, platform=platform, user=user).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
