"""The configuration's one error: it names the key and, when known, the file."""


class ConfigError(Exception):
    """The configuration is unusable; the message names the dotted key and the file."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}configuration key {key!r}: {problem}")
