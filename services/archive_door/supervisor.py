"""supervisord.conf: the foreground default runs every program under supervisord.

Why supervisord (and not honcho, the other kept option): honcho stops every process when one
exits, which is what a developer's Procfile wants and the opposite of what an archive needs;
supervisord restarts the one that died, logs the restart, rotates each program's log and
answers on a control socket (``supervisorctl``, and the test kit's XML-RPC calls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .layout import Layout
from .programs import UMASK, Program

#: Log rotation of every program and of supervisord itself.
LOG_MAX_BYTES = "50MB"
LOG_BACKUPS = 5
#: Restarts tried while a program keeps failing before ``start_seconds`` (1 s, 2 s, 3 s … apart);
#: then supervisord marks it FATAL and logs it. A program that ran and died is always restarted.
START_RETRIES = 50


def _quote(value: str) -> str:
    """A value in supervisord's ``environment=`` syntax (``%`` is its interpolation sign)."""
    escaped = value.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _command(words: Sequence[str]) -> str:
    """A command line supervisord splits with shlex; ``%`` doubled for its interpolation."""
    import shlex

    return " ".join(shlex.quote(w) for w in words).replace("%", "%%")


def _environment(env: Mapping[str, str]) -> str:
    return ",".join(f"{key}={_quote(value)}" for key, value in env.items())


def render_supervisord(layout: Layout, programs: Sequence[Program], environment: Mapping[str, str],
                       identifier: str, user: str | None = None) -> str:
    """The configuration; ``user`` (``root`` when started as root) says that supervisord is meant
    to keep running as that user rather than drop privileges."""
    lines = [
        "; The archive's processes, run by supervisord in the foreground. Written by",
        "; `python -m archive_door run` at each start: edit the configuration, not this file.",
        f";   supervisorctl -c {layout.supervisord_conf} status     what runs, with PIDs",
        f";   supervisorctl -c {layout.supervisord_conf} restart api",
        "; Ctrl-C (or SIGTERM to supervisord) stops the door, the workers, the API, then Orthanc.",
        "",
        "; Only the owner may connect (mode 0700): the socket itself is the access control.",
        "[unix_http_server]",
        f"file={layout.supervisor_socket}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        *([f"user={user}"] if user else []),
        f"identifier={identifier}",
        f"logfile={layout.logs / 'supervisord.log'}",
        f"logfile_maxbytes={LOG_MAX_BYTES}",
        f"logfile_backups={LOG_BACKUPS}",
        "loglevel=info",
        f"pidfile={layout.run / 'supervisord.pid'}",
        f"childlogdir={layout.logs}",
        f"directory={layout.data}",
        "; Every program inherits these (and supervisord's own environment).",
        f"environment={_environment(environment)}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{layout.supervisor_socket}",
    ]
    for priority, program in enumerate(programs, start=1):
        log = layout.program_log(program.name)
        lines += [
            "",
            f"; {program.description}" if program.description else ";",
            f"[program:{program.name}]",
            f"command={_command(program.command)}",
        ]
        if program.environment:
            lines.append(f"environment={_environment(program.environment)}")
        lines += [
            f"directory={layout.data}",
            # Files the program creates are its user's alone (a codec's decoded pixels, storage).
            # Per program: supervisord's global umask applies only when it daemonizes.
            f"umask={UMASK}",
            f"priority={priority * 10}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={program.start_seconds}",
            f"startretries={START_RETRIES}",
            f"stopsignal={program.stop_signal}",
            f"stopwaitsecs={program.stop_wait_seconds}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
        ]
    return "\n".join(lines) + "\n"
