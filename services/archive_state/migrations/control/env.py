"""Alembic environment of the control database: runs on the connection migrate() hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

_config = context.config
_connection = _config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run these migrations through archive_state.db.migrate()")
context.configure(
    connection=_connection,
    version_table=_config.get_main_option("version_table") or "alembic_version_control",
    # SQLite changes most columns only by copying the table: let later revisions use batch mode.
    render_as_batch=_connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
