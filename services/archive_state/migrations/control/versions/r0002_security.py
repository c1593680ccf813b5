"""Control database: organisation units, roles (the built-in ones seeded), users, grants,
browser sessions, bearer tokens and API keys (issue 8).

Revision ID: control_0002
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from archive_state.sqltypes import UTCDateTime, id_type, json_type

revision = "control_0002"
down_revision = "control_0001"
branch_labels = None
depends_on = None

# The built-in roles as this revision seeds them: a copy, so later edits of
# archive_auth.permissions never change what an old revision did.
_ROLES = (
    ("admin", "系统管理员", "System administrator",
     ["view", "download", "upload", "delete", "restore", "purge", "share", "configure",
      "audit-read", "user-admin", "admin"]),
    ("tenant-admin", "医院管理员", "Hospital administrator",
     ["view", "download", "upload", "delete", "restore", "share", "configure", "user-admin"]),
    ("radiologist", "放射科医生", "Radiologist", ["view", "download", "upload", "share"]),
    ("clinician", "临床医生", "Clinician", ["view"]),
    ("technician", "技师", "Technician", ["view", "upload"]),
    ("auditor", "审计员", "Auditor", ["audit-read"]),
)


def upgrade() -> None:
    op.create_table(
        "org_units",
        sa.Column("id", id_type(), nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=True),
        sa.Column("parent_id", id_type(), nullable=True),
        sa.Column("tenant", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_org_units"),
        sa.ForeignKeyConstraint(["parent_id"], ["org_units.id"],
                                name="fk_org_units_parent_id_org_units"),
        sa.CheckConstraint("kind IN ('region', 'hospital', 'campus', 'clinic', 'department')",
                           name="ck_org_units_kind"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_org_units_parent_id", "org_units", ["parent_id"])
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=False),
        sa.Column("permissions", json_type(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roles"),
    )
    op.create_table(
        "users",
        sa.Column("id", id_type(), nullable=False, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("username_key", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("failed_since", UTCDateTime(), nullable=True),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username_key", name="uq_users_username_key"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "grants",
        sa.Column("user_id", id_type(), nullable=False),
        sa.Column("role_id", sa.String(64), nullable=False),
        sa.Column("unit_id", id_type(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "role_id", "unit_id", name="pk_grants"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_grants_user_id_users",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], name="fk_grants_role_id_roles"),
        sa.ForeignKeyConstraint(["unit_id"], ["org_units.id"],
                                name="fk_grants_unit_id_org_units"),
    )
    op.create_index("ix_grants_unit_id", "grants", ["unit_id"])
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", id_type(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_auth_sessions_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_auth_sessions_user_id_users",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", id_type(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_access_tokens_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_access_tokens_user_id_users",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_access_tokens_user_id", "access_tokens", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("permissions", json_type(), nullable=False),
        sa.Column("tenants", json_type(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(roles, [
        {"id": role_id, "name": name, "name_en": name_en, "permissions": permissions,
         "builtin": True, "created_at": now, "updated_at": now}
        for role_id, name, name_en, permissions in _ROLES])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_access_tokens_user_id", table_name="access_tokens")
    op.drop_table("access_tokens")
    op.drop_index("ix_auth_sessions_user_id", table_name="auth_sessions")
    op.drop_table("auth_sessions")
    op.drop_index("ix_grants_unit_id", table_name="grants")
    op.drop_table("grants")
    op.drop_table("users")
    op.drop_table("roles")
    op.drop_index("ix_org_units_parent_id", table_name="org_units")
    op.drop_table("org_units")
