"""Orthanc's configuration as the door needs it: the user's files, expanded, plus what we enforce.

Every file of the configuration folder is written to ``DATA/run/orthanc/`` with its ``${VAR}``
placeholders expanded (the services read the same files). Then, in the file that defines each
key (Orthanc refuses a top-level key defined in two files), the launcher enforces:

- ``RemoteAccessAllowed: false``: Orthanc's HTTP port answers loopback only; the world reaches
  the archive through nginx.
- ``AuthenticationEnabled: true`` with the internal credential in ``RegisteredUsers`` (merged
  with the users the configuration lists): even on loopback, a local process without the
  credential cannot use Orthanc's administrative REST.
- ``HttpCompressionEnabled: false``: nginx compresses JSON; pixel data must never be gzipped
  (measured: a frame takes 40 ms gzipped against 3.5 ms plain).
- the DICOM keys of ``Archive.Dicom`` (:func:`dicom_keys`): known modalities live in Orthanc's
  database, kept equal to ``/api/modalities``; C-GET and C-MOVE only for known AEs from their
  registered address; with ``RefuseUnknownAe`` nothing at all for unknown AEs; DICOM TLS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archive_config import jsonc
from archive_config.config_check import expand
from archive_config.settings import SECTION, DicomSettings, parse_dataclass

from .credential import Credential

#: Keys the door sets whatever the configuration says.
ENFORCED: Mapping[str, Any] = {
    "RemoteAccessAllowed": False,
    "AuthenticationEnabled": True,
    "HttpCompressionEnabled": False,
}


def dicom_keys(dicom: DicomSettings) -> dict[str, Any]:
    """Orthanc's DICOM security keys for ``Archive.Dicom`` (docs/dicom-security.md).

    - ``DicomModalitiesInDatabase: true``: modalities made through Orthanc's REST (by the API's
      sync) are kept in Orthanc's database across restarts; without it Orthanc forgets them when
      it restarts and, until the API's next reconcile, refuses every registered modality.
    - ``DicomAlwaysAllowGet``/``Move: false`` always: a C-GET sends images back to whoever asks
      (Orthanc 1.10.1 and 1.12.7 serve any caller when ``DicomAlwaysAllowGet`` is true), and a
      C-MOVE may send them to any known destination: both only for registered AEs.
    - ``DicomCheckModalityHost: true`` always: "known" means this AE title from this address
      (an AE title is a label any caller can type). It only matters for requests that need a
      known AE: C-GET and C-MOVE, and everything when ``RefuseUnknownAe`` is on.
    - ``RefuseUnknownAe``: every ``DicomAlwaysAllow*`` false, C-ECHO included, so Orthanc rejects
      an unknown AE at association (A-ASSOCIATE-RJ) rather than after it: a modality's
      "verify" button then tells its engineer the truth, and unknown callers hold no SCP thread.
    - ``Tls``: ``DicomTlsEnabled`` and its files; off, TLS is off whatever Orthanc's keys said.
    """
    keys: dict[str, Any] = {
        "DicomModalitiesInDatabase": True,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": True,
        "DicomTlsEnabled": dicom.tls.enabled,
    }
    if dicom.refuse_unknown_ae:
        keys.update({"DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
                     "DicomAlwaysAllowFind": False, "DicomAlwaysAllowFindWorklist": False})
    if dicom.tls.enabled:
        keys.update({
            "DicomTlsCertificate": dicom.tls.certificate,
            "DicomTlsPrivateKey": dicom.tls.private_key,
            "DicomTlsTrustedCertificates": dicom.tls.trusted_certificates,
            "DicomTlsRemoteCertificateRequired": dicom.tls.remote_certificate_required,
        })
    return keys


def _dicom_settings(files: Mapping[str, Mapping[str, Any]]) -> DicomSettings:
    """``Archive.Dicom`` of the expanded files (already validated by the configuration check)."""
    for name, content in files.items():
        section = content.get(SECTION)
        if isinstance(section, Mapping):
            raw = section.get("Dicom", {})
            if not isinstance(raw, Mapping):
                raise ValueError(f"{name}: {SECTION}.Dicom must be an object")
            return parse_dataclass(DicomSettings, raw, f"{SECTION}.Dicom", name)
    return DicomSettings()


def render(source: Path, env: Mapping[str, str], credential: Credential) -> dict[str, dict[str, Any]]:
    """File name → the content to write, for every file of the folder ``source``."""
    files: dict[str, dict[str, Any]] = {}
    for path in jsonc.config_files(source):
        data = jsonc.load_file(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a JSON object")
        files[path.name] = expand(data, dict(env))
    if not files:
        raise ValueError(f"{source}: no configuration files found")

    def home_of(key: str) -> dict[str, Any]:
        """The file that defines ``key``; if none does, the one with Orthanc's HttpPort."""
        for wanted in (key, "HttpPort"):
            for content in files.values():
                if wanted in content:
                    return content
        return next(iter(files.values()))

    for name, content in files.items():
        if content.get("DicomModalities"):
            raise ValueError(
                f"{name}: DicomModalities is ignored, because Orthanc keeps the modalities in its "
                "database (DicomModalitiesInDatabase, set by the launcher): register them with "
                "/api/modalities (the console's modality page) and leave DicomModalities empty")
    for key, value in {**ENFORCED, **dicom_keys(_dicom_settings(files))}.items():
        home_of(key)[key] = value
    users_file = home_of("RegisteredUsers")
    users = users_file.get("RegisteredUsers") or {}
    if not isinstance(users, dict):
        raise ValueError("RegisteredUsers must be an object of user name → password")
    users_file["RegisteredUsers"] = {**users, credential.username: credential.password}
    return files


def write(target: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the rendered files (mode 0600: they hold the internal credential)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = target / name
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        path.chmod(0o600)
