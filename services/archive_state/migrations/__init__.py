"""Alembic migrations, one tree per database: ``control`` (the region) and ``state`` (a tenant).

Run by :func:`archive_state.db.migrate`; each ``env.py`` expects the connection (already inside
the locked transaction) in ``config.attributes["connection"]``. To add a revision, copy the last
one in ``versions/`` and set ``down_revision`` to its ``revision``.
"""
