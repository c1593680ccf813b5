"""The plugin's exception tree: everything here stops Orthanc's start-up, on purpose.

Settings errors are :class:`archive_config.ConfigError` (shared by every process role); these are
the plugin's own.
"""


class PluginError(Exception):
    """Base of every error this package raises on purpose."""


class RegistrationError(PluginError):
    """A callback would be registered twice, or a feature is listed twice."""


class StartupCheckFailed(PluginError):
    """A feature's start-up check failed; the message says what to do (e.g. run the migrations)."""

    def __init__(self, check: str, problem: str) -> None:
        self.check = check
        self.problem = problem
        super().__init__(f"start-up check {check!r} failed: {problem}")
