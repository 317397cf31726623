"""bookings: who may commit a school's spending (contact_roles), one diary for every person across
network meetings, courses, peer reviews and coaching (filled from what is already planned), and a
course session's booking cut-off

Revision ID: 0005
Revises: 0004
"""
import datetime as dt
import json

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _date(value):
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def upgrade():
    op.create_table(
        "contact_roles",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("role", sa.String(30), primary_key=True),
        sa.Column("may_commit_spending", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("sequence", sa.Integer),
    )
    diary = op.create_table(
        "diary",
        sa.Column("person_id", sa.String(36), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref_id", sa.String(36), nullable=False),
        sa.Column("what", sa.String(300), nullable=False),
    )
    op.create_index("ix_diary_ref_id", "diary", ["ref_id"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("booking_cutoff_days", sa.Integer, nullable=False, server_default="0"))
    # What is already planned goes into the diary (first come keeps the day; earlier data never checked
    # across kinds, so a clash found here stays visible in the thing itself, not in the diary).
    bind = op.get_bind()
    rows, taken = [], set()

    def add(person, day, kind, ref, what):
        if (person, day) not in taken:
            taken.add((person, day))
            rows.append({"person_id": person, "day": day, "kind": kind, "ref_id": ref, "what": what[:300]})
    people = {r.network_id: (_json(r.people), r.name) for r in bind.execute(sa.text("SELECT network_id, people, name FROM networks"))}
    for m in bind.execute(sa.text("SELECT meeting_id, network_id, day FROM meetings")):
        members, name = people.get(m.network_id, ([], ""))
        for person in members:
            add(person, _date(m.day), "network_meeting", m.meeting_id, f"network meeting of {name}")
    for r in bind.execute(sa.text("SELECT review_id, host_urn, dates, team FROM peer_reviews WHERE status = 'scheduled'")):
        for reviewer, _role in _json(r.team):
            for day in _json(r.dates):
                add(reviewer, _date(day), "peer_review", r.review_id, f"peer review of school {r.host_urn}")
    for b in bind.execute(sa.text("SELECT b.booking_id, b.contact_id, s.day, s.course_code FROM bookings b "
                                  "JOIN sessions s ON s.session_id = b.session_id WHERE b.status <> 'cancelled'")):
        add(b.contact_id, _date(b.day), "course", b.booking_id, f"course {b.course_code}")
    if rows:
        op.bulk_insert(diary, rows)


def downgrade():
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("booking_cutoff_days")
    op.drop_index("ix_diary_ref_id", table_name="diary")
    op.drop_table("diary")
    op.drop_table("contact_roles")
