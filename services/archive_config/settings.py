"""The plugin's settings: the ``Archive`` section of Orthanc's JSON configuration.

Parsed once at start-up into frozen dataclasses. JSON keys are the PascalCase form of the field
names (``state_directory`` ↔ ``StateDirectory``), the convention of Orthanc's own keys. An unknown
key, a value of the wrong type, or a missing required value raises :class:`ConfigError` naming the
dotted key (``Archive.Viewer.Root``) and the file that holds the section.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .errors import ConfigError
from .security_settings import SecuritySettings

SECTION = "Archive"

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def _check_tenant(value: str) -> str | None:
    if not _TENANT_RE.match(value):
        return "must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit"
    return None


def _check_url_root(value: str) -> str | None:
    if not (value.startswith("/") and value.endswith("/")) or "//" in value or value == "/":
        return "must be a URL path that starts and ends with '/', such as '/ohif/'"
    return None


def _check_not_empty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _meta(check: Callable[[Any], str | None] | None = None, doc: str = "") -> dict[str, Any]:
    return {"check": check, "doc": doc}


@dataclass(frozen=True)
class ViewerSettings:
    """The OHIF viewer, served by the archive on the same origin as DICOMweb."""

    enabled: bool = field(default=True, metadata=_meta(doc="Serve the OHIF viewer."))
    root: str = field(
        default="/ohif/", metadata=_meta(_check_url_root, "URL path the viewer is served under.")
    )
    directory: str = field(
        default="",
        metadata=_meta(doc="Folder of the installed OHIF build (made by scripts/setup)."),
    )
    app_config: str = field(
        default="",
        metadata=_meta(doc="OHIF app-config.js template (ohif-config/app-config.js)."),
    )
    default_language: Literal["zh", "en"] = field(
        default="zh", metadata=_meta(doc="UI language when the URL has no ?lng=.")
    )


def _check_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port number from 1 to 65535"


def _check_positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _check_count(value: int) -> str | None:
    return None if 1 <= value <= 64 else "must be from 1 to 64"


def _check_database_url(value: str) -> str | None:
    if not value or value.startswith("sqlite:///") or value.startswith("postgresql+psycopg://"):
        return None
    return "must be an SQLAlchemy URL: 'sqlite:///<path>' or 'postgresql+psycopg://user:password@host:port/db'"


@dataclass(frozen=True)
class HttpsSettings:
    """HTTPS on the door. With no certificate given, a self-signed one is generated once."""

    enabled: bool = field(default=False, metadata=_meta(doc="Serve HTTPS as well as HTTP."))
    port: int = field(default=8443, metadata=_meta(_check_port, "HTTPS port of the door."))
    certificate_file: str = field(
        default="",
        metadata=_meta(doc="PEM certificate (chain); empty: a self-signed one in the run folder."),
    )
    key_file: str = field(default="", metadata=_meta(doc="PEM private key of the certificate."))
    redirect_http: bool = field(
        default=False, metadata=_meta(doc="Answer plain HTTP with a redirect to HTTPS.")
    )


@dataclass(frozen=True)
class DoorSettings:
    """nginx, the one door: every HTTP request from outside goes through it."""

    listen_address: str = field(
        default="127.0.0.1",
        metadata=_meta(_check_not_empty, "Address the door listens on; '0.0.0.0' for every interface."),
    )
    http_port: int = field(default=8042, metadata=_meta(_check_port, "HTTP port of the door."))
    https: HttpsSettings = field(default_factory=HttpsSettings)
    max_upload_size: str = field(
        default="4g", metadata=_meta(_check_not_empty, "Largest request body (STOW-RS), nginx units.")
    )
    auth_cache_seconds: int = field(
        default=5, metadata=_meta(doc="How long the door caches an authorization answer.")
    )


@dataclass(frozen=True)
class ApiSettings:
    """The API service (``/api``, later ``/fhir``), on loopback behind the door."""

    port: int = field(default=18043, metadata=_meta(_check_port, "Loopback port of the API service."))
    processes: int = field(
        default=1, metadata=_meta(_check_count, "Worker processes of the API's ASGI server.")
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """SQLAlchemy URLs of the region's control database and this tenant's state database."""

    control: str = field(
        default="",
        metadata=_meta(
            _check_database_url,
            "Control database: tenants, services, later users and audit. Empty: SQLite "
            "'control.sqlite' in StateDirectory.",
        ),
    )
    state: str = field(
        default="",
        metadata=_meta(
            _check_database_url,
            "This tenant's state database: jobs, change outbox. Empty: SQLite "
            "'tenant-<Tenant>.sqlite' in StateDirectory.",
        ),
    )


@dataclass(frozen=True)
class JobSettings:
    """The durable job queue in the state database."""

    workers: int = field(default=1, metadata=_meta(_check_count, "Worker processes that run jobs."))
    lease_seconds: float = field(
        default=30.0,
        metadata=_meta(_check_positive, "A claimed job not heart-beaten for this long is claimed again."),
    )
    poll_seconds: float = field(
        default=1.0, metadata=_meta(_check_positive, "How often an idle worker looks for work.")
    )
    max_attempts: int = field(
        default=5, metadata=_meta(_check_count, "Attempts before a job is given up as failed.")
    )
    retry_delay_seconds: float = field(
        default=5.0, metadata=_meta(_check_positive, "Delay before the first retry; doubles each time.")
    )
    retry_delay_max_seconds: float = field(
        default=600.0, metadata=_meta(_check_positive, "Longest delay between two attempts.")
    )
    verify_stable_studies: bool = field(
        default=True,
        metadata=_meta(doc="Check every stored file against its recorded MD5 once its study is stable."),
    )
    keep_finished_days: float = field(
        default=30.0,
        metadata=_meta(_check_positive, "Succeeded and cancelled jobs are deleted this many days "
                       "after they ended; failed ones are kept until retried or cancelled."),
    )


def _check_pem_file(value: str) -> str | None:
    """A PEM file the process can read (the launcher and Orthanc read it at start)."""
    if not value:
        return None
    if not os.path.isfile(value):
        return "is not a file"
    if not os.access(value, os.R_OK):
        return "cannot be read by this user"
    return None


_TLS_SECTION = "Archive.Dicom.Tls"


@dataclass(frozen=True)
class DicomTlsSettings:
    """DICOM TLS on Orthanc's DICOM port (PS3.15 B.1, the TLS secure transport profile)."""

    enabled: bool = field(
        default=False,
        metadata=_meta(doc="Orthanc's DICOM port speaks TLS only (plain TCP is refused); "
                           "Orthanc's own connections use TLS to modalities marked so."),
    )
    certificate: str = field(
        default="",
        metadata=_meta(_check_pem_file, "PEM certificate of the archive (its DICOM TLS "
                                        "identity, for incoming and outgoing connections)."),
    )
    private_key: str = field(
        default="",
        metadata=_meta(_check_pem_file, "PEM private key of Certificate (unencrypted)."),
    )
    trusted_certificates: str = field(
        default="",
        metadata=_meta(_check_pem_file, "PEM file of the certificates (CAs) the archive trusts "
                                        "for the peers' certificates."),
    )
    remote_certificate_required: bool = field(
        default=True,
        metadata=_meta(doc="Refuse a peer that presents no certificate (mutual TLS)."),
    )

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        for name in ("certificate", "private_key", "trusted_certificates"):
            if not getattr(self, name):
                raise ConfigError(f"{_TLS_SECTION}.{json_key(name)}",
                                  "required when DICOM TLS is enabled")


@dataclass(frozen=True)
class DicomAuditSettings:
    """The DICOM audit: every DIMSE association in the audit trail, read from Orthanc's log."""

    enabled: bool = field(
        default=True,
        metadata=_meta(doc="Start Orthanc with --verbose-generic --verbose-dicom and let a "
                           "worker turn the DIMSE lines of its log into audit rows (job "
                           "audit.dicom-log, every minute); only with Archive.Security.Enabled."),
    )
    orthanc_log: str = field(
        default="",
        metadata=_meta(doc="Orthanc's log file; empty: ARCHIVE_DATA/logs/orthanc.log, where "
                           "supervisord writes it."),
    )


@dataclass(frozen=True)
class DicomSettings:
    """The archive's DICOM (DIMSE) connections, beyond Orthanc's own keys."""

    suppress_delayed_ack: bool = field(
        default=True,
        metadata=_meta(doc="Acknowledge received TCP data at once (TCP_QUICKACK after each read): "
                           "senders that leave Nagle on no longer wait for delayed ACKs."),
    )
    refuse_unknown_ae: bool = field(
        default=False,
        metadata=_meta(doc="Refuse every association from an AE title (and address) not "
                           "registered in /api/modalities; off: anyone may echo, store and find."),
    )
    tls: DicomTlsSettings = field(default_factory=DicomTlsSettings)
    audit: DicomAuditSettings = field(default_factory=DicomAuditSettings)


@dataclass(frozen=True)
class GateSettings:
    """The ingest gate inside Orthanc: every instance, by every way in, before it is indexed."""

    enabled: bool = field(
        default=True,
        metadata=_meta(doc="Check every incoming instance before Orthanc indexes it: accept, "
                           "repair (declared, lossless) or quarantine it with its reasons."),
    )


def _check_deaths(value: int) -> str | None:
    return None if 1 <= value <= 100 else "must be from 1 to 100"


@dataclass(frozen=True)
class CrashGuardSettings:
    """The crash guard: an instance that keeps killing Orthanc's decoder is quarantined."""

    enabled: bool = field(
        default=True,
        metadata=_meta(doc="Read the door's error log for requests in flight when Orthanc died "
                           "and quarantine the instance they asked for once it killed Orthanc "
                           "DeathsToQuarantine times within WindowSeconds."),
    )
    deaths_to_quarantine: int = field(
        default=2,
        metadata=_meta(_check_deaths, "Orthanc deaths an instance must be in flight at before "
                                      "it is quarantined."),
    )
    window_seconds: float = field(
        default=3600.0,
        metadata=_meta(_check_positive, "Those deaths count only within this many seconds of "
                                        "each other."),
    )
    poll_seconds: float = field(
        default=5.0,
        metadata=_meta(_check_positive, "How often a worker looks at the door's error log."),
    )
    door_log: str = field(
        default="",
        metadata=_meta(doc="The door's error log; empty: ARCHIVE_DATA/logs/door.log."),
    )


@dataclass(frozen=True)
class ArchiveSettings:
    """Everything the plugin and the services read from the ``Archive`` section."""

    state_directory: str = field(
        metadata=_meta(_check_not_empty, "Folder for the archive's own state (SQLite, run folder).")
    )
    tenant: str = field(
        default="default", metadata=_meta(_check_tenant, "This archive's tenant (hospital) id.")
    )
    role: Literal["archive"] = field(
        default="archive",
        metadata=_meta(doc="Process role; only 'archive' exists so far (router comes later)."),
    )
    viewer: ViewerSettings = field(default_factory=ViewerSettings)
    door: DoorSettings = field(default_factory=DoorSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    dicom: DicomSettings = field(default_factory=DicomSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    crash_guard: CrashGuardSettings = field(default_factory=CrashGuardSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    @property
    def dicom_audit(self) -> bool:
        """Whether DIMSE requests are audited from Orthanc's log: ``Archive.Dicom.Audit.Enabled``
        on an archive with ``Archive.Security.Enabled``, like the door's log (an archive open
        to everyone keeps no audit of its logs)."""
        return self.dicom.audit.enabled and self.security.enabled


def control_database_url(settings: ArchiveSettings) -> str:
    """``Archive.Database.Control``, or the SQLite file in the state folder when it is empty."""
    return settings.database.control or f"sqlite:///{settings.state_directory}/control.sqlite"


def state_database_url(settings: ArchiveSettings) -> str:
    """``Archive.Database.State``, or this tenant's SQLite file in the state folder."""
    return settings.database.state or (
        f"sqlite:///{settings.state_directory}/tenant-{settings.tenant}.sqlite"
    )


def json_key(field_name: str) -> str:
    """``state_directory`` → ``StateDirectory``."""
    return "".join(part[:1].upper() + part[1:] for part in field_name.split("_"))


T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "object"
    names = {str: "string", bool: "true/false", int: "integer", float: "number"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, key: str, source: str | None) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected an object, got {type(value).__name__}", source)
        return parse_dataclass(tp, value, key, source)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(key, f"expected {_type_name(tp)}, got {value!r}", source)
        return value
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {type(value).__name__}", source)
        return tuple(_convert(item_tp, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise TypeError(f"unions are not supported in settings ({key})")
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }.get(tp)
    if ok is None:
        raise TypeError(f"unsupported settings type {tp!r} ({key})")
    if not ok:
        raise ConfigError(key, f"expected {_type_name(tp)}, got {value!r}", source)
    return float(value) if tp is float else value


def parse_dataclass(cls: type[T], raw: Mapping[str, Any], prefix: str, source: str | None) -> T:
    """Build ``cls`` from ``raw``, checking keys, types and each field's own check."""
    hints = typing.get_type_hints(cls)
    fields = {json_key(f.name): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{prefix}.{key}", f"unknown key (known keys: {known})", source)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        dotted = f"{prefix}.{key}"
        if key not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(dotted, "required value is missing", source)
            continue
        value = _convert(hints[f.name], raw[key], dotted, source)
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(dotted, f"{problem} (got {value!r})", source)
        values[f.name] = value
    return cls(**values)


def parse_settings(configuration: Mapping[str, Any], source: str | None = None) -> ArchiveSettings:
    """Parse the whole Orthanc configuration's ``Archive`` section."""
    if SECTION not in configuration:
        raise ConfigError(SECTION, "section is missing from the Orthanc configuration", source)
    raw = configuration[SECTION]
    if not isinstance(raw, Mapping):
        raise ConfigError(SECTION, f"expected an object, got {type(raw).__name__}", source)
    settings = parse_dataclass(ArchiveSettings, raw, SECTION, source)
    viewer = settings.viewer
    if viewer.enabled and not viewer.directory:
        raise ConfigError(f"{SECTION}.Viewer.Directory", "required when the viewer is enabled", source)
    return settings


def describe(cls: type[Any] = ArchiveSettings, prefix: str = SECTION) -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every key, for the configuration reference in docs/."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{json_key(f.name)}"
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            rows.append((key, "object", "", tp.__doc__ or ""))
            rows.extend(describe(tp, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        else:
            default = "(required)"
        rows.append((key, _type_name(tp), default, f.metadata.get("doc", "")))
    return rows
