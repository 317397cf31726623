"""A failing statement's error, and so every log line made from it, carries no parameter values:
they can be personal data (a contact's name or email)."""
from __future__ import annotations

import logging
import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from shared.db import Database, drop_postgres_database, ensure_postgres_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
SECRET = "jane.doe.personal@example.org"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'people.db'}"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_hide_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
    database = Database(url)
    yield database
    database.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def test_a_failing_statement_logs_no_parameter_values(database, caplog):
    people = sa.Table("people", sa.MetaData(), sa.Column("email", sa.String(100), primary_key=True))
    people.metadata.create_all(database.engine)
    log = logging.getLogger("test.hide_parameters")
    with caplog.at_level(logging.ERROR):
        with pytest.raises(DBAPIError) as caught:
            with database.transaction() as session:
                # fails in the database, with the personal value bound as a parameter
                session.execute(sa.text("INSERT INTO people (email, no_such_column) VALUES (:email, :other)"),
                                {"email": SECRET, "other": SECRET})
        log.error("the insert failed", exc_info=caught.value)
    logged = caplog.text
    assert "INSERT INTO people" in logged  # the statement is there to debug with
    assert "SQL parameters hidden" in logged
    assert SECRET not in logged and SECRET not in str(caught.value)


def test_the_read_engine_hides_them_too(database):
    with pytest.raises(DBAPIError) as caught:
        with database.reader() as session:
            session.execute(sa.text("SELECT no_such_column FROM no_such_table WHERE x = :email"), {"email": SECRET})
    assert SECRET not in str(caught.value) and "SQL parameters hidden" in str(caught.value)
