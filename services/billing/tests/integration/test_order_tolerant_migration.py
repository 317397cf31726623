"""Migration 0005 (order-tolerant copies) on SQLite and PostgreSQL: a database in use at 0004 keeps its
rows, gains the sequence columns, may hold a member with no name yet and a second credit of a charge,
and goes back to 0004."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from billing.adapters.tables import charges, member_affiliations, members, subscriptions
from shared.db import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, "billing_0005") as db:
        yield db


def _alembic(database, action: str, revision: str) -> None:
    database.migrate("billing:migrations", action, revision)


def _charge(id_, **extra) -> dict:
    return dict(id=id_, subscription_id=None, urn="110001", payer_kind="school", payer_id="110001",
                payer_name="School", payer_key="school:110001", offering_code="SI", offering_name="SI",
                service_area="school_improvement", period_start=dt.date(2026, 4, 1), period_end=dt.date(2027, 3, 31),
                amount_pence=1000, vat_treatment="standard", status="uninvoiced",
                **{"kind": "charge", "credits_charge_id": None, **extra})


def test_a_database_at_0004_is_carried_over_and_back(database):
    database.upgrade("billing:migrations", "0004")
    with database.engine.begin() as connection:
        # 0002 builds these two tables from the current tables.py; drop what 0005 adds, as a database
        # migrated by the code of that time lacks it
        connection.execute(sa.text("ALTER TABLE member_affiliations DROP COLUMN sequence"))
        connection.execute(sa.text("ALTER TABLE subscriptions DROP COLUMN end_sequence"))
        connection.execute(sa.text("INSERT INTO members (urn, name, is_academy) VALUES ('110001', 'School', false)"))
        connection.execute(sa.text("INSERT INTO member_affiliations (urn, effective_from, name, is_academy) "
                                   "VALUES ('110001', '2020-01-01', 'School', false)"))
        connection.execute(sa.text("INSERT INTO subscriptions (subscription_id, urn, period_start, period_end, terms) "
                                   "VALUES ('s-1', '110001', '2026-04-01', '2027-03-31', '{}')"))
        connection.execute(sa.insert(charges), [_charge("c-1"), _charge("k-1", kind="credit", credits_charge_id="c-1")])

    database.upgrade("billing:migrations")

    with database.engine.begin() as connection:
        assert connection.execute(sa.select(members.c.name, members.c.details_sequence)).all() == [("School", None)]
        assert connection.execute(sa.select(member_affiliations.c.sequence)).all() == [(None,)]
        assert connection.execute(sa.select(subscriptions.c.end_sequence)).all() == [(None,)]
        connection.execute(sa.insert(members).values(urn="110002", left_on=dt.date(2027, 4, 1), lifecycle_sequence=3))
        connection.execute(sa.insert(charges).values(**_charge("k-2", kind="credit", credits_charge_id="c-1")))
        assert "ix_charges_credits_charge_id" in {i["name"] for i in sa.inspect(connection).get_indexes("charges")}

    with database.engine.begin() as connection:
        connection.execute(sa.delete(charges).where(charges.c.id == "k-2"))
    _alembic(database, "downgrade", "0004")
    with database.engine.begin() as connection:
        assert sorted(connection.execute(sa.text("SELECT urn, name FROM members")).all()) == [
            ("110001", "School"), ("110002", "110002")]
        with pytest.raises(sa.exc.IntegrityError):  # one credit per charge again
            with connection.begin_nested():
                connection.execute(sa.insert(charges).values(**_charge("k-3", kind="credit", credits_charge_id="c-1")))
