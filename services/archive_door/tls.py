"""The door's certificate: the one configured, or a self-signed one made once with openssl.

The generated certificate lives in ``<StateDirectory>/tls/`` so it survives every re-render of
the run folder (browsers that accepted it once keep accepting it); the run folder gets a copy.
It names ``localhost``, ``127.0.0.1`` and the machine's host name (RFC 5280 subjectAltName; CN
alone is ignored by browsers), and lasts ten years: it is a default for a closed network, to be
replaced by a real one through ``Archive.Door.Https.CertificateFile``/``KeyFile``.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from archive_config.errors import ConfigError
from archive_config.settings import HttpsSettings

from .errors import DoorError, ToolMissing

log = logging.getLogger(__name__)

CERTIFICATE = "door.crt"
KEY = "door.key"


@dataclass(frozen=True)
class CertificatePair:
    certificate: Path
    key: Path


def subject_names(hostname: str | None = None) -> list[str]:
    """subjectAltName entries: localhost, loopback and the host name (and its FQDN)."""
    names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    hosts = [hostname] if hostname else [socket.gethostname(), socket.getfqdn()]
    for host in hosts:
        entry = f"DNS:{host}"
        if host and entry not in names:
            names.append(entry)
    return names


def generate(folder: Path, hostname: str | None = None) -> CertificatePair:
    """Make a self-signed certificate in ``folder`` unless one is there already."""
    pair = CertificatePair(folder / CERTIFICATE, folder / KEY)
    if pair.certificate.is_file() and pair.key.is_file():
        return pair
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ToolMissing("openssl is not installed: it makes the door's self-signed certificate")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    command = [
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
        "-subj", "/CN=localhost/O=Regional archive (self-signed)",
        "-addext", "subjectAltName=" + ",".join(subject_names(hostname)),
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "extendedKeyUsage=serverAuth",
        "-keyout", str(pair.key), "-out", str(pair.certificate),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DoorError(f"openssl could not make the door's certificate: {result.stderr.strip()}")
    pair.key.chmod(0o600)
    log.info("made a self-signed certificate for the door: %s", pair.certificate)
    return pair


def configured(https: HttpsSettings, generated_folder: Path, source: str | None = None) -> CertificatePair:
    """The pair HTTPS uses: both files given, or the generated one. One without the other is an error."""
    cert, key = https.certificate_file, https.key_file
    if cert or key:
        for name, value in (("CertificateFile", cert), ("KeyFile", key)):
            dotted = f"Archive.Door.Https.{name}"
            if not value:
                raise ConfigError(dotted, "required when the other of CertificateFile/KeyFile is set", source)
            if not Path(value).is_file():
                raise ConfigError(dotted, f"no such file: {value}", source)
        return CertificatePair(Path(cert), Path(key))
    return generate(generated_folder)
