"""The audit trail: who did what, when, with what outcome, in each service's own database.

Every state-changing request (POST, PUT, PATCH, DELETE) and every refusal of access (401, 403, and a
404 for an object out of the caller's reach) is one row of `audit_log`, appended by the HTTP
entrypoint after it answered: the caller (token subject, roles, organisation), the route and the
object ids in its path, the status and outcome, and the correlation id that ties it to the logs and
events. The caller's `contact_id` claim, when it has one, is kept too: it is how a person's erasure
(`shared.erasure`) finds the rows they made. Nothing else updates or deletes a row: an erasure, the
person's or an operator's after a handover, blanks only the declared personal column, the subject,
keeping the fact. Operations and finance
query it at `GET /audit` by object id or by subject.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

import sqlalchemy as sa

log = logging.getLogger(__name__)

TABLE = "audit_log"
#: The audit trail's personal column, for each service's PERSONAL_DATA declaration.
PERSONAL_COLUMNS = ["subject"]
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("subject", sa.String(200), index=True),  # the token's subject; NULL: anonymous
        sa.Column("roles", sa.String(300), nullable=False, server_default=""),
        sa.Column("organisation", sa.String(60), nullable=False, server_default=""),  # school:<urn>, mat:<id>
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("object_ids", sa.String(400), nullable=False, server_default="{}"),  # the path's values, JSON
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),  # done, refused, failed
        sa.Column("correlation_id", sa.String(100)),
    ]


def _contact_column(index: bool = True) -> sa.Column:
    # the token's contact_id claim (a pseudonymous id, kept after erasure as every tombstone keeps it)
    return sa.Column("contact_id", sa.String(36), index=index)


def define_audit_table(metadata: sa.MetaData) -> sa.Table:
    """The `audit_log` table of a service's own database."""
    return sa.Table(TABLE, metadata, *_columns(), _contact_column())


def create_audit_log(op) -> None:
    """For a service's Alembic migration: create `audit_log` as `define_audit_table` declares it."""
    op.create_table(TABLE, *_columns())


def add_audit_contact_id(op) -> None:
    """For a service's Alembic migration: the `contact_id` column `define_audit_table` adds to the first shape."""
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(_contact_column(index=False))
        batch.create_index(f"ix_{TABLE}_contact_id", ["contact_id"])


def drop_audit_contact_id(op) -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index(f"ix_{TABLE}_contact_id")
        batch.drop_column("contact_id")


def should_record(method: str, status: int, refused_access: bool) -> bool:
    return method.upper() in STATE_CHANGING or refused_access


def outcome_of(status: int) -> str:
    return "done" if status < 400 else "failed" if status >= 500 else "refused"


def record(database, table: sa.Table, *, principal, method: str, route: str, path_values: dict, status: int,
           correlation_id: str | None) -> None:
    """Append one row (its own transaction). A failure to record is logged, never the request's answer."""
    organisation = ""
    if principal is not None:
        organisation = f"school:{principal.urn}" if principal.urn else f"mat:{principal.mat_id}" if principal.mat_id else ""
    row = {"at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
           "subject": principal.subject if principal is not None else None,
           "contact_id": principal.contact_id if principal is not None else None,
           "roles": ",".join(sorted(principal.roles))[:300] if principal is not None else "",
           "organisation": organisation, "method": method.upper(), "route": route[:200],
           "object_ids": json.dumps({k: str(v) for k, v in (path_values or {}).items()}, sort_keys=True)[:400],
           "status": status, "outcome": outcome_of(status), "correlation_id": correlation_id}
    try:
        with database.transaction() as session:
            session.execute(table.insert().values(**row))
            session.commit()
    except Exception:  # noqa: BLE001 - the answer stands; the gap is logged loudly
        log.error("could not append to the audit trail: %s %s %s", method, route, status, exc_info=True)


def query(session, table: sa.Table, *, object_id: str | None = None, subject: str | None = None,
          limit: int = 500) -> list[dict]:
    """Rows about one object id (any path value equal to it) or by one subject, newest first."""
    statement = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if subject:
        statement = statement.where(table.c.subject == subject)
    if object_id:
        statement = statement.where(table.c.object_ids.like(f'%": "{object_id}"%'))
    rows = []
    for row in session.execute(statement):
        item = dict(row._mapping)
        item["at"] = item["at"].isoformat()
        item["object_ids"] = json.loads(item["object_ids"])
        rows.append(item)
    return rows
