"""`Idempotency-Key` for POSTs that create money records or purchases: a retry gets the first answer.

A client that sends `Idempotency-Key: <its own unique key>` with such a POST and retries it (a
timeout, a dropped connection) gets the first response back, with `Idempotent-Replayed: true`,
and nothing is recorded twice. The keys live in the service's own database, in
`idempotency_keys` (one row per key: the request's fingerprint, then the response):

- the first request with a key *claims* it: it inserts the row (status NULL: in progress) and
  commits before the use case runs. The key is the primary key, so of two concurrent requests
  with one key exactly one inserts (SQLite serialises writers; PostgreSQL makes the second
  insert wait for the first's commit and then fail); the other is answered 409 while the first
  is in progress, and gets the stored answer after it;
- a success (2xx) is stored on the row with its body; a refusal or failure (anything else)
  deletes the row, since a refused request records nothing (the services' rule: no partial
  write) and the client may retry, after fixing the cause, with the same key;
- the same key with a different request (method, path, query or body bytes: SHA-256 of them)
  is refused 422 naming `Idempotency-Key`, never replayed;
- a process killed between the use case's commit and storing its response leaves the key in
  progress: every retry with it is answered 409 rather than risk recording twice (the client
  then looks the record up instead). Rows are kept for good, like the inbox.

The table is declared with `define_idempotency_table` in a service's tables and created by its
own Alembic migration (`create_idempotency_table`); `shared.http` routes declared with
`idempotent=True` use it.
"""
from __future__ import annotations

import dataclasses
import hashlib

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from shared.db import Database
from shared.messaging_tables import utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
TABLE = "idempotency_keys"


def _columns() -> list[sa.Column]:
    return [
        sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("status", sa.Integer),  # NULL while the first request is in progress
        sa.Column("content_type", sa.String(100)),
        sa.Column("body", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("completed_at", sa.DateTime),
    ]


def define_idempotency_table(metadata: sa.MetaData) -> sa.Table:
    """The `idempotency_keys` table of a service's own database."""
    return sa.Table(TABLE, metadata, *_columns())


def create_idempotency_table(op) -> None:
    """For a service's Alembic migration: create `idempotency_keys` as declared above."""
    op.create_table(TABLE, *_columns())


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Claimed:
    """The key was new: run the request, then `complete` or `release`."""


@dataclasses.dataclass(frozen=True)
class Replay:
    """The key's first request succeeded: answer this again."""

    status: int
    content_type: str
    body: str


@dataclasses.dataclass(frozen=True)
class InProgress:
    """The key's first request has not finished (or its process died before storing the answer)."""


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """The key was first used for a different request."""

    route: str


class IdempotencyKeys:
    """Claims, completes and releases keys in `table` of `database` (see the module docstring)."""

    def __init__(self, database: Database, table: sa.Table):
        self.database = database
        self.table = table

    def claim(self, key: str, request_fingerprint: str, route: str) -> Claimed | Replay | InProgress | Mismatch:
        try:
            with self.database.transaction() as session:
                session.execute(self.table.insert().values(key=key, fingerprint=request_fingerprint, route=route,
                                                           created_at=utcnow()))
                session.commit()
            return Claimed()
        except IntegrityError:
            pass
        with self.database.reader() as session:
            row = session.execute(sa.select(self.table).where(self.table.c.key == key)).first()
        if row is None:  # released by its first request between our insert and this read: a refusal
            return InProgress()
        if row.fingerprint != request_fingerprint:
            return Mismatch(route=row.route)
        if row.status is None:
            return InProgress()
        return Replay(status=row.status, content_type=row.content_type, body=row.body)

    def complete(self, key: str, status: int, content_type: str, body: str) -> None:
        with self.database.transaction() as session:
            session.execute(self.table.update().where(self.table.c.key == key).values(
                status=status, content_type=content_type, body=body, completed_at=utcnow()))
            session.commit()

    def release(self, key: str) -> None:
        with self.database.transaction() as session:
            session.execute(self.table.delete().where(self.table.c.key == key, self.table.c.status.is_(None)))
            session.commit()
