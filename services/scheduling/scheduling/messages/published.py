"""What scheduling publishes: strict schemas, one per event type and version.

Every event is written to the outbox in the same transaction as the change it reports.
`attendance_recorded` is what billing charges from; its fields are fixed by
docs/events.md. The others (meetings, bookings, peer reviews, coaching pairs and sessions) are read by nobody yet.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared import handover
from shared.envelope import PayloadSchemas
from shared.handover import with_handover

URN = validate.Regexp(r"^\d{6}$")
PRICE_BASES = ("included_place", "subscriber", "non_subscriber", "free")
TERMS = ("autumn", "spring", "summer")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class AttendanceRecordedV1(_Strict):
    """A booked person's attendance at a session was recorded; `chargeable` says whether billing should
    charge the school, at `unit_price_pence` on `price_basis` (fixed when the place was confirmed)."""

    attendance_id = fields.UUID(required=True)
    booking_id = fields.UUID(required=True)
    session_id = fields.UUID(required=True)
    course_code = fields.String(required=True)
    offering_code = fields.String(required=True, allow_none=True)
    service_area = fields.String(required=True)
    urn = fields.String(required=True, validate=URN)
    contact_id = fields.String(required=True)
    session_date = fields.Date(required=True)
    attended = fields.Boolean(required=True)
    chargeable = fields.Boolean(required=True)
    price_basis = fields.String(required=True, validate=validate.OneOf(PRICE_BASES))
    unit_price_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    vat_treatment = fields.String(required=True)


class _Meeting(_Strict):
    meeting_id = fields.UUID(required=True)
    network_id = fields.UUID(required=True)
    network_name = fields.String(required=True)
    academic_year = fields.Integer(required=True, strict=True)
    term = fields.String(required=True, validate=validate.OneOf(TERMS))
    date = fields.Date(required=True)
    host_urn = fields.String(required=True, validate=URN)
    invited = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class MeetingScheduledV1(_Meeting):
    """A network's termly meeting was placed on a date at a host school (open for the host, no clashes)."""


class MeetingRescheduledV1(_Meeting):
    """A network meeting moved (its host left or closed); the previous date and host say from where."""

    previous_date = fields.Date(required=True)
    previous_host_urn = fields.String(required=True, validate=URN)
    reason = fields.String(required=True)


class _Booking(_Strict):
    booking_id = fields.UUID(required=True)
    session_id = fields.UUID(required=True)
    course_code = fields.String(required=True)
    urn = fields.String(required=True, validate=URN)
    contact_id = fields.String(required=True)
    session_date = fields.Date(required=True)


class BookingConfirmedV1(_Booking):
    """A place on a session was confirmed (on booking, or promoted from the waiting list), with its price basis."""

    price_basis = fields.String(required=True, validate=validate.OneOf(PRICE_BASES))
    unit_price_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    promoted_from_waiting_list = fields.Boolean(required=True)


class BookingWaitlistedV1(_Booking):
    """A session was full: the booking joined its waiting list at `position` (1 = next in line)."""

    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class TeamMember(_Strict):
    reviewer_id = fields.String(required=True)
    urn = fields.String(required=True, validate=URN)
    role = fields.String(required=True, validate=validate.OneOf(("lead", "member")))


class _Review(_Strict):
    review_id = fields.UUID(required=True)
    cycle = fields.Integer(required=True, strict=True)
    host_urn = fields.String(required=True, validate=URN)
    dates = fields.List(fields.Date(), required=True, validate=validate.Length(min=1, max=3))
    team = fields.List(fields.Nested(TeamMember), required=True, validate=validate.Length(min=2, max=4))


class PeerReviewScheduledV1(_Review):
    """A school's peer review for the cycle was planned: its dates and its team (one lead); every hard rule checked."""

    method = fields.String(required=True)


class PeerReviewRescheduledV1(_Review):
    """A planned peer review changed because a school converted, left or a reviewer became unavailable;
    `status` is cancelled when the host itself left. The previous dates and team say what changed."""

    status = fields.String(required=True, validate=validate.OneOf(("scheduled", "cancelled")))
    previous_host_urn = fields.String(required=True, validate=URN)
    previous_dates = fields.List(fields.Date(), required=True)
    previous_team = fields.List(fields.Nested(TeamMember), required=True)
    reason = fields.String(required=True)


class CoachingPairFormedV1(_Strict):
    """A mentor and a leader were paired (another school, the leader's phase, within the mentor's load);
    `needs_met`: the leader's needs the mentor's strengths cover. Pairs come from a maximum matching."""

    pair_id = fields.UUID(required=True)
    mentor_id = fields.String(required=True)
    mentor_urn = fields.String(required=True, validate=URN)
    leader_id = fields.String(required=True)
    leader_urn = fields.String(required=True, validate=URN)
    needs_met = fields.List(fields.String(), required=True)
    formed_on = fields.Date(required=True)


class CoachingSessionBookedV1(_Strict):
    """A coaching pair's session was booked on an open day of both schools, neither person elsewhere then."""

    coaching_session_id = fields.UUID(required=True)
    pair_id = fields.UUID(required=True)
    mentor_id = fields.String(required=True)
    mentor_urn = fields.String(required=True, validate=URN)
    leader_id = fields.String(required=True)
    leader_urn = fields.String(required=True, validate=URN)
    date = fields.Date(required=True)


PUBLISHED = with_handover(PayloadSchemas({
    ("attendance_recorded", 1): AttendanceRecordedV1(),
    ("meeting_scheduled", 1): MeetingScheduledV1(),
    ("meeting_rescheduled", 1): MeetingRescheduledV1(),
    ("booking_confirmed", 1): BookingConfirmedV1(),
    ("booking_waitlisted", 1): BookingWaitlistedV1(),
    ("peer_review_scheduled", 1): PeerReviewScheduledV1(),
    ("peer_review_rescheduled", 1): PeerReviewRescheduledV1(),
    ("coaching_pair_formed", 1): CoachingPairFormedV1(),
    ("coaching_session_booked", 1): CoachingSessionBookedV1(),
}))

_MEETING = {"meeting_id": "0b9d2f4e-6c1a-4a53-8f0e-2d7c9b1a3e55", "network_id": "5f1c8e2a-3b4d-4e6f-9a0b-1c2d3e4f5a6b",
            "network_name": "Aylesbury primary heads", "academic_year": 2026, "term": "autumn", "date": "2026-10-14",
            "host_urn": "110394", "invited": 18}
_BOOKING = {"booking_id": "7a3e5c1d-2b4f-4c6e-8d0a-9b1c3d5e7f90", "session_id": "3c5e7a9b-1d2f-4a6c-8e0b-2d4f6a8c0e1a",
            "course_code": "DSL-REFRESH", "urn": "110394", "contact_id": "c0a8e1f2-3d4b-4c5e-9f6a-7b8c9d0e1f2a",
            "session_date": "2026-11-05"}
_TEAM = [{"reviewer_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "urn": "110251", "role": "lead"},
         {"reviewer_id": "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60", "urn": "110417", "role": "member"}]
_REVIEW = {"review_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "cycle": 2026, "host_urn": "110394",
           "dates": ["2027-02-23", "2027-02-24"], "team": _TEAM}

EXAMPLES = {
    ("attendance_recorded", 1): {
        "attendance_id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", "booking_id": _BOOKING["booking_id"],
        "session_id": _BOOKING["session_id"], "course_code": "DSL-REFRESH", "offering_code": "GOV-SAFEGUARD",
        "service_area": "governance", "urn": "110394", "contact_id": _BOOKING["contact_id"],
        "session_date": "2026-11-05", "attended": True, "chargeable": True, "price_basis": "non_subscriber",
        "unit_price_pence": 15000, "vat_treatment": "standard"},
    ("meeting_scheduled", 1): _MEETING,
    ("meeting_rescheduled", 1): {**_MEETING, "date": "2026-10-21", "host_urn": "110417",
                                 "previous_date": "2026-10-14", "previous_host_urn": "110394",
                                 "reason": "host 110394 left the partnership"},
    ("booking_confirmed", 1): {**_BOOKING, "price_basis": "subscriber", "unit_price_pence": 9500,
                               "promoted_from_waiting_list": False},
    ("booking_waitlisted", 1): {**_BOOKING, "position": 1},
    ("peer_review_scheduled", 1): {**_REVIEW, "method": "cp-sat"},
    ("peer_review_rescheduled", 1): {**_REVIEW, "team": [_TEAM[0], {**_TEAM[1], "urn": "110502",
                                                                  "reviewer_id": "e3f4a5b6-c7d8-4e9f-8a1b-2c3d4e5f6071"}],
                                     "status": "scheduled", "previous_host_urn": "110394",
                                     "previous_dates": ["2027-02-23", "2027-02-24"], "previous_team": _TEAM,
                                     "reason": "school 110417 converted into MAT GLT (same MAT as the host) on 2027-01-01"},
}
_PAIR = {"pair_id": "4b6d8f0a-2c4e-4a6b-8c0d-2e4f6a8b0c1d", "mentor_id": _TEAM[0]["reviewer_id"], "mentor_urn": "110251",
         "leader_id": _BOOKING["contact_id"], "leader_urn": "110394"}
EXAMPLES[("coaching_pair_formed", 1)] = {**_PAIR, "needs_met": ["send"], "formed_on": "2026-09-14"}
EXAMPLES[("coaching_session_booked", 1)] = {**_PAIR, "coaching_session_id": "6d8f0a2c-4e6a-4b8c-9d0e-4f6a8b0c2d3e",
                                            "date": "2026-10-07"}
EXAMPLES.update(handover.EXAMPLES)
