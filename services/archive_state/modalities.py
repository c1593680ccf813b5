"""The tenant's known DICOM modalities: what each may ask of the archive, kept in the state
database (:class:`~archive_state.models_modalities.ModalityRow`).

A modality is valid or is not built (:class:`ModalitySpec` checks itself):

- ``name``: Orthanc's symbolic id of the modality (``/modalities/{name}``), 1-64 of
  ``A-Z a-z 0-9 - _`` (what Orthanc accepts);
- ``ae_title``: an AE value (PS3.5 6.2, VR AE): 1-16 characters of the default repertoire
  (printable ASCII), no backslash; leading and trailing spaces are not significant and are
  dropped. Several modalities may share an AE title (two scanners both called ``CT``): Orthanc
  then tells them apart by the caller's address;
- ``host``: an IP address, or a host name for a modality that never calls in (no operations):
  Orthanc compares a caller's IP address with ``Host`` as text (``DicomCheckModalityHost``), so
  a name would refuse the modality's every request;
- ``port``: 1-65535 (where Orthanc connects for C-MOVE and C-STORE to it);
- ``operations``: which of C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE it may ask for.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, delete, select, update
from sqlalchemy.engine import Engine

from ._sql import upsert_insert
from .clock import Clock, utc_now
from .db import read, write
from .errors import StateError
from .models_modalities import ModalityRow

__all__ = ["InvalidModality", "MANUFACTURERS", "Modality", "ModalityExists", "ModalityNotFound",
           "ModalitySpec", "ModalityStore", "Operation"]

_t = cast(Table, ModalityRow.__table__)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
AE_TITLE_MAX = 16
DESCRIPTION_MAX = 200
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
#: Orthanc's ``Manufacturer`` presets (patches it applies to its own C-FIND SCU requests);
#: the same list in Orthanc 1.10.1 and 1.12.7.
MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea",
                 "GE")


class Operation(enum.StrEnum):
    """A DIMSE service a remote AE may ask of the archive (PS3.7 9.1)."""

    ECHO = "echo"
    STORE = "store"
    FIND = "find"
    GET = "get"
    MOVE = "move"


#: A problem with a value, in Chinese and in English (both are shown to people).
Problem = tuple[str, str]


class InvalidModality(StateError):
    """A field of a modality is not valid; ``field`` names it, ``zh`` and ``en`` say why."""

    status = 422

    def __init__(self, field_name: str, problem: Problem) -> None:
        self.field = field_name
        self.zh, self.en = problem
        super().__init__(f"{field_name}: {self.en}")


class ModalityNotFound(StateError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"没有名为 {name} 的设备 / modality {name} does not exist")
        self.name = name


class ModalityExists(StateError):
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(f"名为 {name} 的设备已存在 / modality {name} exists already")
        self.name = name


def check_name(value: str) -> Problem | None:
    if not NAME_RE.match(value):
        return ("须为 1-64 个字符，只含 A-Z、a-z、0-9、'-' 和 '_'",
                "must be 1-64 characters of A-Z, a-z, 0-9, '-' and '_'")
    return None


def check_ae_title(value: str) -> Problem | None:
    """PS3.5 Table 6.2-1, VR AE: 16 bytes at most, default repertoire without backslash and
    control characters, not only spaces."""
    if "\\" in value:
        return "不能含反斜杠", "must not contain a backslash"
    if any(not (" " <= ch <= "~") for ch in value):
        return ("只能用可打印的 ASCII 字符（DICOM 默认字符集）",
                "must be printable ASCII characters (the DICOM default repertoire)")
    trimmed = value.strip(" ")
    if not trimmed:
        return "不能为空", "must not be empty"
    if len(trimmed) > AE_TITLE_MAX:
        return (f"最多 {AE_TITLE_MAX} 个字符", f"must be at most {AE_TITLE_MAX} characters")
    return None


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_host(value: str, *, calls_in: bool) -> Problem | None:
    if is_ip_address(value):
        return None
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        return "须为 IP 地址或主机名", "must be an IP address or a host name"
    if all(label.isdigit() for label in labels):
        return "不是有效的 IP 地址", "is not a valid IP address"
    if calls_in:
        return ("允许任何操作的设备须用 IP 地址登记：Orthanc 把呼叫方的 IP 地址与它按文字比较",
                "must be an IP address for a modality allowed any operation: Orthanc compares "
                "the caller's IP address with it as text")
    return None


def check_port(value: int) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "须为整数", "must be an integer"
    return None if 1 <= value <= 65535 else ("须为 1 到 65535 的 TCP 端口",
                                               "must be a TCP port from 1 to 65535")


def check_manufacturer(value: str) -> Problem | None:
    if value in MANUFACTURERS:
        return None
    return (f"须为以下之一：{', '.join(MANUFACTURERS)}",
            f"must be one of {', '.join(MANUFACTURERS)}")


def check_description(value: str) -> Problem | None:
    if len(value) <= DESCRIPTION_MAX:
        return None
    return f"最多 {DESCRIPTION_MAX} 个字符", f"must be at most {DESCRIPTION_MAX} characters"


@dataclass(frozen=True)
class ModalitySpec:
    """What an administrator defines for one modality; checked when built."""

    name: str
    ae_title: str
    host: str
    port: int
    operations: frozenset[Operation] = frozenset({Operation.ECHO, Operation.STORE})
    use_tls: bool = False
    manufacturer: str = "Generic"
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", frozenset(Operation(o) for o in self.operations))
        problems = [
            ("name", check_name(self.name)),
            ("ae_title", check_ae_title(self.ae_title)),
            ("port", check_port(self.port)),
            ("host", check_host(self.host, calls_in=bool(self.operations))),
            ("manufacturer", check_manufacturer(self.manufacturer)),
            ("description", check_description(self.description)),
        ]
        for name, problem in problems:
            if problem:
                raise InvalidModality(name, problem)
        object.__setattr__(self, "ae_title", self.ae_title.strip(" "))
        if is_ip_address(self.host):  # one spelling, as Orthanc will compare it
            object.__setattr__(self, "host", str(ipaddress.ip_address(self.host)))

    def allows(self, operation: Operation | str) -> bool:
        return Operation(operation) in self.operations


@dataclass(frozen=True)
class Modality:
    """A stored modality: its definition and who made and last changed it, when."""

    tenant: str
    spec: ModalitySpec
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None

    @property
    def name(self) -> str:
        return self.spec.name


def _operations(row: Any) -> frozenset[Operation]:
    return frozenset(op for op in Operation if getattr(row, f"allow_{op.value}"))


def _modality(row: Row[Any]) -> Modality:
    spec = ModalitySpec(name=row.name, ae_title=row.ae_title, host=row.host, port=row.port,
                        operations=_operations(row), use_tls=row.use_tls,
                        manufacturer=row.manufacturer, description=row.description)
    return Modality(tenant=row.tenant, spec=spec, created_at=row.created_at,
                    created_by=row.created_by, updated_at=row.updated_at,
                    updated_by=row.updated_by)


def _values(spec: ModalitySpec) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ae_title": spec.ae_title, "host": spec.host, "port": spec.port,
        "use_tls": spec.use_tls, "manufacturer": spec.manufacturer,
        "description": spec.description}
    values.update({f"allow_{op.value}": op in spec.operations for op in Operation})
    return values


@dataclass
class ModalityStore:
    """The modalities of one tenant."""

    engine: Engine
    tenant: str
    clock: Clock = field(default=utc_now)

    def list(self) -> list[Modality]:
        """Every modality, by name."""
        with read(self.engine) as conn:
            rows = conn.execute(select(_t).where(_t.c.tenant == self.tenant)
                                .order_by(_t.c.name)).all()
        return [_modality(r) for r in rows]

    def get(self, name: str) -> Modality:
        with read(self.engine) as conn:
            row = conn.execute(select(_t).where(_t.c.tenant == self.tenant,
                                                _t.c.name == name)).first()
        if row is None:
            raise ModalityNotFound(name)
        return _modality(row)

    def create(self, spec: ModalitySpec, *, by: str | None) -> Modality:
        """Add a modality; :class:`ModalityExists` when the name is taken."""
        now = self.clock()
        with write(self.engine) as conn:
            inserted = conn.execute(
                upsert_insert(conn, _t).values(
                    tenant=self.tenant, name=spec.name, created_at=now, created_by=by,
                    updated_at=now, updated_by=by, **_values(spec))
                .on_conflict_do_nothing(index_elements=["tenant", "name"])
                .returning(_t.c.name)).first()
        if inserted is None:
            raise ModalityExists(spec.name)
        return self.get(spec.name)

    def update(self, spec: ModalitySpec, *, by: str | None) -> Modality:
        """Replace the definition of the modality ``spec.name``."""
        with write(self.engine) as conn:
            changed = conn.execute(
                update(_t).where(_t.c.tenant == self.tenant, _t.c.name == spec.name)
                .values(updated_at=self.clock(), updated_by=by, **_values(spec))).rowcount
        if not changed:
            raise ModalityNotFound(spec.name)
        return self.get(spec.name)

    def delete(self, name: str) -> Modality:
        """Remove a modality; returns what it was."""
        with write(self.engine) as conn:
            row = conn.execute(select(_t).where(_t.c.tenant == self.tenant,
                                                _t.c.name == name)).first()
            if row is None:
                raise ModalityNotFound(name)
            conn.execute(delete(_t).where(_t.c.tenant == self.tenant, _t.c.name == name))
        return _modality(row)


def specs(modalities: Iterable[Modality]) -> dict[str, ModalitySpec]:
    return {m.name: m.spec for m in modalities}
