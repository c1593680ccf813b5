"""The security tables of the control database: organisation, roles, users, grants and the three
kinds of credential (browser sessions, bearer tokens, API keys).

Credentials are stored only as SHA-256 digests of their secret: a copy of the database does not
let anyone in. Passwords are argon2id hashes (``archive_auth.passwords``).
"""

from __future__ import annotations

from datetime import datetime
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import ControlBase
from .sqltypes import UTCDateTime, id_type, json_type

ORG_UNIT_KINDS = ("region", "hospital", "campus", "clinic", "department")


class OrgUnitRow(ControlBase):
    """One node of the organisation tree; ``tenant`` is set on hospital units (the archive that
    holds their images) and inherited by the units below."""

    __tablename__ = "org_units"
    __table_args__ = (
        CheckConstraint("kind IN ('region', 'hospital', 'campus', 'clinic', 'department')",
                        name="kind"),
        Index("ix_org_units_parent_id", "parent_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    tenant: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RoleRow(ControlBase):
    """A named set of permissions; the built-in ones are seeded by the migration."""

    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(json_type())
    builtin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(ControlBase):
    """A person who logs in. ``username_key`` is the case-folded username, unique."""

    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(id_type(), primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150))
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean)
    must_change_password: Mapped[bool] = mapped_column(Boolean)
    failed_count: Mapped[int] = mapped_column(Integer)
    failed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GrantRow(ControlBase):
    """A user holds a role on an org unit (and so on the unit's tenant, or every tenant for the
    region unit)."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_unit_id", "unit_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(200))


class SessionRow(ControlBase):
    """A browser session. ``id`` is its public id (logs, audit); the cookie's token is kept only
    as ``token_hash``."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_ip: Mapped[str | None] = mapped_column(String(64))


class AccessTokenRow(ControlBase):
    """A bearer token from ``POST /api/auth/token``, kept as ``token_hash``."""

    __tablename__ = "access_tokens"
    __table_args__ = (Index("ix_access_tokens_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKeyRow(ControlBase):
    """A system's credential ``ak_<id>_<secret>``: its own permissions (a subset) on some or all
    tenants (``tenants`` null: all)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[list[str]] = mapped_column(json_type())
    tenants: Mapped[list[str] | None] = mapped_column(json_type())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
