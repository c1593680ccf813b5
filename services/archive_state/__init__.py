"""The archive's databases: models, Alembic migrations, the durable job queue, the change
outbox and the service heartbeats.

Two databases (docs/architecture.md, decision 5): the region's *control* database (tenants,
services) and each tenant's *state* database (jobs, outbox). Both are SQLite files by default and
PostgreSQL (psycopg 3) by configuration; every module here runs unchanged on both.
"""
