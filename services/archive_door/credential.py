"""The internal credential: the one user Orthanc accepts on its (loopback) HTTP port.

Made once, on the first start, into ``<StateDirectory>/internal-credential.json`` (mode 0600),
and kept: Orthanc gets it in ``RegisteredUsers``, nginx adds it to what it forwards to
``/dicom-web`` and ``/wado``, and the services read it to call Orthanc's REST API. Nobody types
it; rotating it is deleting the file and restarting.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .errors import DoorError

log = logging.getLogger(__name__)

USERNAME: Final = "archive-internal"


@dataclass(frozen=True)
class Credential:
    username: str
    password: str

    def basic_authorization(self) -> str:
        """The ``Authorization`` header value (RFC 7617)."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


def load(path: Path) -> Credential:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credential(username=str(data["username"]), password=str(data["password"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DoorError(f"{path}: not a usable internal credential ({exc}); delete it to make a new one") from exc


def ensure(path: Path) -> Credential:
    """The credential in ``path``, made first if the file does not exist (never overwritten)."""
    if path.exists():
        return load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    credential = Credential(username=USERNAME, password=secrets.token_urlsafe(32))
    text = json.dumps({"username": credential.username, "password": credential.password}, indent=2)
    # O_EXCL: two launchers starting at once cannot both write one.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load(path)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    log.info("made the internal credential %s", path)
    return credential
