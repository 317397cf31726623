"""The outbox and inbox tables every service keeps in its own database.

- `outbox`: events committed in the same transaction as the state change that
  caused them, waiting for the relay. A row is unsent until the broker confirmed
  it (`sent_at`). Rows are published in `id` order, which is commit order, so
  the events of one aggregate leave in the order they happened.
- `inbox`: the ids of upstream events already applied, committed in the same
  transaction as their effect; a second delivery finds its id here and does
  nothing.
- `event_sequences`: per aggregate (`school:100000`, `payer:mat:M1`...), the
  last sequence number given to one of its events. A unit of work takes the
  next numbers by updating this row, which locks it until commit, so two
  transactions writing events of one aggregate are serialised there: their
  outbox rows get ids (and sequence numbers) in commit order, and the relay,
  which publishes in id order, sends one aggregate's events in sequence even
  on PostgreSQL, where id order is otherwise not commit order.

Times are naive UTC in both databases.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def define_messaging_tables(metadata: sa.MetaData, *, sequencing: bool = True) -> tuple[sa.Table, sa.Table]:
    """Add `outbox`, `inbox` and (with `sequencing`, as at head) `event_sequences` to a service's
    metadata; returns outbox and inbox. `sequencing=False` is their shape before sequencing came."""
    extra = [sa.Column("sequence", sa.BigInteger)] if sequencing else []
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
        *extra,
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
    if sequencing:
        define_event_sequences(metadata)
    return outbox, inbox


def define_event_sequences(metadata: sa.MetaData) -> sa.Table:
    """`event_sequences` (see the module docstring)."""
    return sa.Table(
        "event_sequences",
        metadata,
        sa.Column("aggregate", sa.String(200), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
    )


def create_messaging_tables(op) -> None:
    """Alembic helper for a service's first migration: outbox and inbox as they first were
    (`add_event_sequencing` adds the rest in its own migration)."""
    outbox, inbox = define_messaging_tables(sa.MetaData(), sequencing=False)
    bind = op.get_bind()
    outbox.create(bind)
    inbox.create(bind)


def add_event_sequencing(op) -> None:
    """Alembic helper: the outbox's `sequence` column and the `event_sequences` table.

    Events written before this migration keep no sequence (NULL); consumers treat an
    event without one as carrying no order information."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("sequence", sa.BigInteger))
    define_event_sequences(sa.MetaData()).create(op.get_bind())


def drop_event_sequencing(op) -> None:
    op.drop_table("event_sequences")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sequence")


def drop_messaging_tables(op) -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
