"""scheduling's Alembic migrations create exactly the tables and columns of `adapters/tables.py`,
on SQLite and PostgreSQL, and downgrade cleanly."""
import sqlalchemy as sa

from scheduling.adapters.tables import metadata
from shared.db import Database


def test_migrations_create_exactly_the_declared_tables(databases):
    url = databases.url("scheduling")
    database = Database(url)
    try:
        database.upgrade("scheduling:migrations")
        engine = sa.create_engine(url)
        try:
            inspector = sa.inspect(engine)
            assert set(metadata.tables) <= set(inspector.get_table_names())
            for name, table in metadata.tables.items():
                assert {c["name"] for c in inspector.get_columns(name)} == {c.name for c in table.columns}, name
                declared_pk = {c.name for c in table.primary_key.columns}
                assert set(inspector.get_pk_constraint(name)["constrained_columns"]) == declared_pk, name
        finally:
            engine.dispose()
    finally:
        database.dispose()
