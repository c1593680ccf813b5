"""``/api/modalities``: the tenant's known DICOM modalities, and Orthanc kept equal to them.

``GET/POST /api/modalities``, ``GET/PUT/DELETE /api/modalities/{name}``; every route needs the
permission the caller's dependency checks (``require("configure")``). A change is written to the
store first (the truth), then Orthanc is synced at once (:mod:`archive_api.modality_sync`); if
Orthanc is down the change stands and the answer says ``orthancSynced: false``: the periodic
reconcile brings Orthanc in step when it is back. Each change is recorded in the audit log as a
``config-change`` with the modality before and after.

Validation (:class:`archive_state.modalities.ModalitySpec`): AE title of at most 16 characters
of the DICOM default repertoire without backslash, an IP address (or, for a modality allowed
no operation, a host name), a port 1-65535; a refused value is a 422 problem naming the field,
in Chinese and English.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from archive_audit.events import ActorKind, AuditEvent, Recorder
from archive_auth.principal import Principal
from archive_state.modalities import (
    DESCRIPTION_MAX,
    NAME_RE,
    InvalidModality,
    Modality,
    ModalitySpec,
    ModalityStore,
    Operation,
)

from .errors import Unprocessable
from .modality_sync import ModalitySync
from .orthanc import AsyncOrthanc, OrthancError
from .camel import CamelModel

log = logging.getLogger(__name__)

Manufacturer = Literal["Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard",
                       "Vitrea", "GE"]
_FIELD_ZH = {"name": "名称", "ae_title": "AE 标题", "host": "主机", "port": "端口",
             "manufacturer": "厂商预设", "description": "说明"}
#: The domain's field names as the API spells them.
_FIELD_API = {"ae_title": "aet"}
_NAME = Path(pattern=NAME_RE.pattern, description="Orthanc's symbolic id of the modality")




class ModalityFields(CamelModel):
    """What a client sends; read-only fields of an answer sent back (``createdAt`` …) are
    ignored, so the console can send an edited object as it got it."""

    aet: str = Field(max_length=64, description="AE title (at most 16 characters, no "
                     "backslash; outer spaces are dropped)")
    host: str = Field(max_length=253, description="IP address the modality calls from and "
                      "listens on (a host name only for a modality allowed no operation)")
    port: int = Field(description="DICOM port of the modality (1-65535)")
    allowed_operations: list[Operation] = Field(
        default_factory=lambda: [Operation.ECHO, Operation.STORE],
        description="What it may ask of the archive: echo, store, find, get, move")
    use_tls: bool = Field(default=False, description="Orthanc connects to it with DICOM TLS")
    manufacturer: Manufacturer = Field(default="Generic",
                                       description="Orthanc's patches for this peer's C-FIND")
    description: str | None = Field(default="", max_length=DESCRIPTION_MAX,
                                    description="说明（中文），e.g. 放射科 1 号 CT")


class ModalityIn(ModalityFields):
    name: str = Field(max_length=64, description="Orthanc's symbolic id: A-Z a-z 0-9 - _")


class ModalityReplace(ModalityFields):
    name: str | None = Field(default=None, max_length=64,
                             description="May be sent; must equal the path's (no renaming)")


class ModalityOut(CamelModel):
    name: str
    aet: str
    host: str
    port: int
    allowed_operations: list[Operation]
    use_tls: bool
    manufacturer: str
    description: str
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, m: Modality) -> "ModalityOut":
        s = m.spec
        return cls(name=s.name, aet=s.ae_title, host=s.host, port=s.port,
                   allowed_operations=[op for op in Operation if op in s.operations],
                   use_tls=s.use_tls, manufacturer=s.manufacturer, description=s.description,
                   created_at=m.created_at, created_by=m.created_by, updated_at=m.updated_at,
                   updated_by=m.updated_by)


class ModalityChange(ModalityOut):
    """The modality after a change (as it was, for a delete) and whether Orthanc has it."""

    orthanc_synced: bool = Field(description="Orthanc has the change now; false: the periodic "
                                 "reconcile will bring it")

    @classmethod
    def after(cls, m: Modality, synced: bool) -> "ModalityChange":
        return cls(**ModalityOut.of(m).model_dump(), orthanc_synced=synced)


def _spec(name: str, fields: ModalityFields) -> ModalitySpec:
    try:
        return ModalitySpec(name=name, ae_title=fields.aet, host=fields.host,
                            port=fields.port, operations=frozenset(fields.allowed_operations),
                            use_tls=fields.use_tls, manufacturer=fields.manufacturer,
                            description=fields.description or "")
    except InvalidModality as exc:
        key = _FIELD_API.get(exc.field, to_camel(exc.field))
        zh = _FIELD_ZH.get(exc.field, exc.field)
        raise Unprocessable(f"{zh}无效：{exc.zh}。Invalid {key}: {exc.en}",
                            errors=[{"field": key, "message": exc.en, "messageZh": exc.zh}]
                            ) from None


def _actor(principal: object) -> tuple[str, ActorKind]:
    """Who the authorization dependency says is calling; ``anonymous`` when it returns no
    :class:`~archive_auth.principal.Principal` (a test's no-op dependency)."""
    if isinstance(principal, Principal):
        return principal.name, principal.actor_kind
    return "anonymous", "anonymous"


def _summary(modality: Modality | None) -> dict[str, Any] | None:
    if modality is None:
        return None
    return ModalityOut.of(modality).model_dump(mode="json", by_alias=True,
                                              exclude={"created_at", "created_by",
                                                       "updated_at", "updated_by"})


def router(store: ModalityStore, orthanc: AsyncOrthanc, authorize: Callable[..., Any], *,
           sync: ModalitySync | None = None, recorder: Recorder | None = None) -> APIRouter:
    """The routes. ``authorize`` is the FastAPI dependency that checks the permission
    (``require("configure")``) and returns the principal; ``sync`` is the one the app's start-up
    and periodic reconcile use (a new one over ``orthanc`` when not given)."""
    syncer = sync or ModalitySync(store, orthanc)
    api = APIRouter(prefix="/api/modalities", tags=["modalities"])

    async def synced() -> bool:
        try:
            report = await syncer.reconcile()
        except OrthancError as exc:
            log.warning("modality change stored; Orthanc not synced yet: %s", exc)
            return False
        return report.ok

    async def audit(principal: Any, name: str, operation: str, before: Modality | None,
                    after: Modality | None) -> None:
        if recorder is None:
            return
        actor, kind = _actor(principal)
        event = AuditEvent(
            action="config-change", outcome="success", actor=actor, actor_kind=kind,
            tenant=store.tenant, resource=f"/api/modalities/{name}",
            session=principal.public_id if isinstance(principal, Principal) else None,
            detail={"object": "modality", "operation": operation,
                    "before": _summary(before), "after": _summary(after)})
        await asyncio.to_thread(recorder.record, event)

    @api.get("", response_model=list[ModalityOut], response_model_by_alias=True,
             summary="The known modalities, by name")
    async def list_modalities(principal: Any = Depends(authorize)) -> list[ModalityOut]:
        return [ModalityOut.of(m) for m in await asyncio.to_thread(store.list)]

    @api.post("", status_code=201, response_model=ModalityChange, response_model_by_alias=True,
              summary="Register a modality", responses={409: {"description": "Name taken"}})
    async def create(body: ModalityIn, principal: Any = Depends(authorize)) -> ModalityChange:
        spec = _spec(body.name, body)
        actor, _ = _actor(principal)
        created = await asyncio.to_thread(store.create, spec, by=actor)
        await audit(principal, spec.name, "create", None, created)
        return ModalityChange.after(created, await synced())

    @api.get("/{name}", response_model=ModalityOut, response_model_by_alias=True,
             summary="One modality")
    async def get(name: str = _NAME, principal: Any = Depends(authorize)) -> ModalityOut:
        return ModalityOut.of(await asyncio.to_thread(store.get, name))

    @api.put("/{name}", response_model=ModalityChange, response_model_by_alias=True,
             summary="Replace a modality's definition")
    async def replace(body: ModalityReplace, name: str = _NAME,
                      principal: Any = Depends(authorize)) -> ModalityChange:
        if body.name is not None and body.name != name:
            raise Unprocessable("不能改名：请删除后重新登记。A modality cannot be renamed: delete "
                                "it and register it again", errors=[{
                                    "field": "name", "message": "must equal the path's name"}])
        spec = _spec(name, body)
        actor, _ = _actor(principal)
        before = await asyncio.to_thread(store.get, name)
        after = await asyncio.to_thread(store.update, spec, by=actor)
        await audit(principal, name, "update", before, after)
        return ModalityChange.after(after, await synced())

    @api.delete("/{name}", response_model=ModalityChange, response_model_by_alias=True,
                summary="Forget a modality (Orthanc forgets it too)")
    async def remove(name: str = _NAME, principal: Any = Depends(authorize)) -> ModalityChange:
        gone = await asyncio.to_thread(store.delete, name)
        await audit(principal, name, "delete", gone, None)
        return ModalityChange.after(gone, await synced())

    return api
