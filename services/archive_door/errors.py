"""The launcher's errors. A bad configuration is :class:`archive_config.ConfigError` (it names
the key); these are the launcher's own failures, each with the exit code the CLI returns."""

from __future__ import annotations


class DoorError(Exception):
    """The launcher cannot go on; ``exit_code`` is what ``python -m archive_door`` returns."""

    exit_code = 1


class AlreadyRunning(DoorError):
    """Another launcher already runs on this data folder (its supervisord answers)."""

    exit_code = 3


class ToolMissing(DoorError):
    """A program the run folder needs (nginx, openssl, Orthanc) is not installed."""

    exit_code = 4


class ViewerBuildError(DoorError):
    """The installed OHIF build does not look like the one :mod:`.viewer` knows how to rebase."""


class AuditKeyMismatch(DoorError):
    """The state folder's audit key is missing or is not the key of the control database's audit
    trail (archives sharing one control database need the same key)."""
