"""The tenant's known DICOM modalities (issue 8, 001 4.3): the one place they are defined.

Orthanc keeps its own copy (``DicomModalitiesInDatabase``), which the API's sync makes equal to
these rows (:mod:`archive_api.modalities`); the rows are the truth.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import StateBase
from .sqltypes import UTCDateTime


class ModalityRow(StateBase):
    """One remote application entity: its Orthanc symbolic name, AE title, address and what it
    may ask of the archive (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE)."""

    __tablename__ = "modalities"
    __table_args__ = (Index("ix_modalities_aet", "tenant", "ae_title"),)

    tenant: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    allow_echo: Mapped[bool] = mapped_column(Boolean)
    allow_store: Mapped[bool] = mapped_column(Boolean)
    allow_find: Mapped[bool] = mapped_column(Boolean)
    allow_get: Mapped[bool] = mapped_column(Boolean)
    allow_move: Mapped[bool] = mapped_column(Boolean)
    use_tls: Mapped[bool] = mapped_column(Boolean)
    manufacturer: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(200))
