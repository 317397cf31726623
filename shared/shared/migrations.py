"""Alembic environment shared by every service's migration history.

A service's `migrations/env.py` is two lines: import its metadata and call
`run_migrations(metadata)`. The database comes from the connection handed over
by `Database.upgrade()` or, when Alembic runs from the command line, from
`DATABASE_URL`. SQLite uses batch mode so later ALTERs work there too.
"""
from __future__ import annotations

import os

from alembic import context
from sqlalchemy import MetaData, create_engine


def run_migrations(target_metadata: MetaData) -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, target_metadata)
        return
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL to the service's database before running alembic")
    engine = create_engine(url, hide_parameters=True)  # parameters can carry personal data (shared.db)
    with engine.begin() as connection:
        _run(connection, target_metadata)
    engine.dispose()


def _run(connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
