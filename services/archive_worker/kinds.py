"""The job kinds this worker runs: kind name → handler ``(job, context) -> result dict``.

The API imports this table to refuse kinds no worker knows (``POST /api/jobs``) and to list them
(``GET /api/jobs/kinds``); it imports no handler dependency beyond the Orthanc client's types.
A further table can be added at start-up with ``--kinds-module dotted.name`` (a module with
``KINDS: Mapping[str, Handler]``), which is how later features, and tests, add kinds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import audit_dicom_log, audit_door_log, crash_quarantine, verify
from .context import Handler


@dataclass(frozen=True)
class KindInfo:
    """What the API shows and checks of a kind before enqueueing it."""

    description: str
    check_params: Callable[[dict[str, Any]], str | None]


def _any_params(params: dict[str, Any]) -> str | None:
    return None


KINDS: Mapping[str, Handler] = MappingProxyType({
    verify.KIND: verify.verify,
    crash_quarantine.KIND: crash_quarantine.quarantine,
    audit_door_log.KIND: audit_door_log.tail,
    audit_dicom_log.KIND: audit_dicom_log.tail,
})

INFO: Mapping[str, KindInfo] = MappingProxyType({
    verify.KIND: KindInfo(verify.DESCRIPTION, verify.check_params),
    crash_quarantine.KIND: KindInfo(crash_quarantine.DESCRIPTION, crash_quarantine.check_params),
    audit_door_log.KIND: KindInfo(audit_door_log.DESCRIPTION, audit_door_log.check_params),
    audit_dicom_log.KIND: KindInfo(audit_dicom_log.DESCRIPTION, audit_dicom_log.check_params),
})


class KindsModuleError(Exception):
    """A ``--kinds-module`` that cannot be imported or has no proper ``KINDS`` table."""


def load(extra_modules: list[str] | tuple[str, ...] = ()) -> dict[str, Handler]:
    """The shipped table plus every extra module's ``KINDS`` (a later name wins)."""
    table: dict[str, Handler] = dict(KINDS)
    for name in extra_modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise KindsModuleError(f"--kinds-module {name}: {exc}") from exc
        extra = getattr(module, "KINDS", None)
        if not isinstance(extra, Mapping) or not all(
                isinstance(k, str) and callable(v) for k, v in extra.items()):
            raise KindsModuleError(f"--kinds-module {name}: needs KINDS: Mapping[str, handler]")
        table.update(extra)
    return table


def info(kind: str) -> KindInfo:
    return INFO.get(kind, KindInfo("", _any_params))
