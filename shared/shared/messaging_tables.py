"""The outbox and inbox tables every service keeps in its own database.

- `outbox`: events committed in the same transaction as the state change that
  caused them, waiting for the relay. A row is unsent until the broker confirmed
  it (`sent_at`). Rows are published in `id` order, which is commit order, so
  the events of one aggregate leave in the order they happened.
- `inbox`: the ids of upstream events already applied, committed in the same
  transaction as their effect; a second delivery finds its id here and does
  nothing.

Times are naive UTC in both databases.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def define_messaging_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Add `outbox` and `inbox` to a service's metadata; returns them."""
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("aggregate", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime),
        sa.Index(
            "ix_outbox_unsent",
            "id",
            sqlite_where=sa.text("sent_at IS NULL"),
            postgresql_where=sa.text("sent_at IS NULL"),
        ),
        sa.Index("ix_outbox_sent_at", "sent_at"),
    )
    inbox = sa.Table(
        "inbox",
        metadata,
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("producer", sa.String(100), nullable=False),
        sa.Column("handled_at", sa.DateTime, nullable=False),
    )
    return outbox, inbox


def create_messaging_tables(op) -> None:
    """Alembic helper for a service's first migration: create outbox and inbox."""
    metadata = sa.MetaData()
    outbox, inbox = define_messaging_tables(metadata)
    bind = op.get_bind()
    outbox.create(bind)
    inbox.create(bind)


def drop_messaging_tables(op) -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
