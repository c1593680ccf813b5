"""The plugin's exception tree."""


class ArchiveError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ArchiveError):
    """The configuration is unusable; the message names the key and, when known, the file."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}configuration key {key!r}: {problem}")


class NotFound(ArchiveError):
    """A resource addressed by a request does not exist (HTTP 404)."""


class BadRequest(ArchiveError):
    """A request is malformed (HTTP 400)."""
