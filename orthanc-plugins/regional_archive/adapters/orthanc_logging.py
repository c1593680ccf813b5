"""Send Python ``logging`` records to Orthanc's log, so one log file holds everything."""

from __future__ import annotations

import logging
from typing import Any


class OrthancLogHandler(logging.Handler):
    def __init__(self, sdk: Any) -> None:
        super().__init__()
        self._sdk = sdk
        self.setFormatter(logging.Formatter("[%(name)s] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The SDK takes a C string: a NUL (a malformed PatientID quoted in a message) would
            # make it refuse the whole line, so control characters are shown escaped.
            text = printable(self.format(record))
            if record.levelno >= logging.ERROR:
                self._sdk.LogError(text)
            elif record.levelno >= logging.WARNING:
                self._sdk.LogWarning(text)
            else:
                self._sdk.LogInfo(text)
        except Exception:  # logging must never break the caller
            self.handleError(record)


_CONTROL = {c: f"\\x{c:02x}" for c in range(32) if chr(c) not in "\n\t"}


def printable(text: str) -> str:
    """``text`` with NUL and other control characters (but newline and tab) escaped."""
    return text.translate(_CONTROL)


def install(sdk: Any, level: int = logging.INFO) -> logging.Logger:
    """Route the package's loggers to Orthanc; return the package's root logger."""
    root = logging.getLogger("regional_archive")
    root.handlers[:] = [OrthancLogHandler(sdk)]
    root.setLevel(level)
    root.propagate = False
    return root
