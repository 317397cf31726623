"""Reads and writes scheduling state through a unit of work's session (SQLAlchemy Core)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from importlib import resources

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from scheduling.adapters import tables as t
from scheduling.domain import calendar as cal
from scheduling.domain import diary as di
from scheduling.domain import peer_review as pr
from scheduling.domain.copies import ContactCopy, SchoolCopy, SLACopy, is_member_record
from scheduling.domain.ordering import is_newer, version_after
from shared import erasure


def _plain(row) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row._mapping.items()}


def _upsert(session, table, keys: dict, values: dict) -> None:
    where = [table.c[k] == v for k, v in keys.items()]
    if session.execute(select(*[table.c[k] for k in keys]).where(*where)).first():
        if values:
            session.execute(update(table).where(*where).values(**values))
    else:
        session.execute(insert(table).values(**keys, **values))


def _insert_ignoring_conflict(session, table):
    make = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return make(table).on_conflict_do_nothing(index_elements=[c.name for c in table.primary_key.columns])


def _locked_row(session, table, keys: dict, defaults: dict) -> dict:
    """The row of `keys`, created from `defaults` if missing, locked until the transaction ends.

    Creating it first means two events about the same new thing wait for each other here
    instead of one failing on the primary key (SQLite's writers are serialised anyway)."""
    session.execute(_insert_ignoring_conflict(session, table).values(**keys, **defaults))
    where = [table.c[k] == v for k, v in keys.items()]
    return dict(session.execute(select(table).where(*where).with_for_update()).one()._mapping)


def _put_if_newer(session, table, keys: dict, values: dict, sequence: int | None) -> bool:
    """Write `values` (a fact versioned by the table's `sequence` column) unless the row holds a newer
    one; returns whether it was written."""
    inserted = session.execute(_insert_ignoring_conflict(session, table).values(
        **keys, **values, sequence=version_after(sequence, None))).rowcount
    if inserted:
        return True
    where = [table.c[k] == v for k, v in keys.items()]
    applied = session.execute(select(table.c.sequence).where(*where).with_for_update()).scalar_one()
    if not is_newer(sequence, applied):
        return False
    session.execute(update(table).where(*where).values(**values, sequence=version_after(sequence, applied)))
    return True


# ------------------------------------------------------------ schools and MATs
_SCHOOL_COPY_COLUMNS = tuple(f.name for f in dataclasses.fields(SchoolCopy))


def school_copy(session, urn: str) -> SchoolCopy:
    """The school as learnt from events (an empty, partial row if unknown), locked for this transaction."""
    row = _locked_row(session, t.schools, {"urn": urn}, {"active": False})
    return SchoolCopy(**{k: row[k] for k in _SCHOOL_COPY_COLUMNS})


def save_school_copy(session, copy: SchoolCopy) -> None:
    values = {k: getattr(copy, k) for k in _SCHOOL_COPY_COLUMNS if k != "urn"}
    session.execute(update(t.schools).where(t.schools.c.urn == copy.urn).values(**values))


def update_school(session, urn: str, **values) -> None:
    session.execute(update(t.schools).where(t.schools.c.urn == urn).values(**values))


def successor_of(session, urn: str) -> str:
    """The school that carries on `urn` now: itself, or the academy it converted into (and so on)."""
    seen = {urn}
    while True:
        found = session.execute(select(t.schools.c.urn).where(t.schools.c.predecessor_urn == urn)).scalar()
        if found is None or found in seen:
            return urn
        seen.add(found)
        urn = found


def set_mat_from(session, urn: str, day: dt.date, mat_id: str | None, sequence: int | None) -> bool:
    """From `day` on the school is in `mat_id` (other dates' entries are kept), unless a newer event
    already said otherwise for that day; returns whether it was written."""
    return _put_if_newer(session, t.school_mats, {"urn": urn, "effective_from": day}, {"mat_id": mat_id}, sequence)


def mat_on(session, urn: str, day: dt.date) -> str | None:
    """The school's MAT on `day` by its dated history (None: none, or nothing known)."""
    return session.execute(select(t.school_mats.c.mat_id).where(
        t.school_mats.c.urn == urn, t.school_mats.c.effective_from <= day)
        .order_by(t.school_mats.c.effective_from.desc()).limit(1)).scalar()


def mat_history(session, urns=None) -> dict[str, tuple]:
    query = select(t.school_mats).order_by(t.school_mats.c.urn, t.school_mats.c.effective_from)
    if urns is not None:
        query = query.where(t.school_mats.c.urn.in_(list(urns)))
    found: dict[str, list] = {}
    for row in session.execute(query):
        found.setdefault(row.urn, []).append((row.effective_from, row.mat_id))
    return {u: tuple(v) for u, v in found.items()}


def school(session, urn: str) -> dict | None:
    row = session.execute(select(t.schools).where(t.schools.c.urn == urn)).first()
    return _plain(row) if row else None


def school_rows(session, urns=None) -> dict[str, dict]:
    """Every row, partial ones included; see `member_rows`."""
    query = select(t.schools)
    if urns is not None:
        query = query.where(t.schools.c.urn.in_(list(urns)))
    return {row.urn: dict(row._mapping) for row in session.execute(query)}


def member_rows(session, urns=None) -> dict[str, dict]:
    """The schools whose copy knows their details and membership: the only ones any rule treats as
    (possibly former) members."""
    return {u: r for u, r in school_rows(session, urns).items()
            if is_member_record(r["details_sequence"], r["lifecycle_sequence"])}


# ------------------------------------------------------------ eligibility and prices
_SLA_COPY_COLUMNS = tuple(f.name for f in dataclasses.fields(SLACopy))


def sla_copy(session, subscription_id: str, urn: str) -> SLACopy:
    """The SLA as learnt from events (an empty, partial row if unknown), locked for this transaction."""
    row = _locked_row(session, t.eligibility, {"subscription_id": subscription_id}, {"urn": urn, "included_places": 0})
    return SLACopy(**{k: row[k] for k in _SLA_COPY_COLUMNS})


def save_sla_copy(session, copy: SLACopy) -> None:
    values = {k: getattr(copy, k) for k in _SLA_COPY_COLUMNS if k != "subscription_id"}
    session.execute(update(t.eligibility).where(t.eligibility.c.subscription_id == copy.subscription_id)
                    .values(**values))


def eligibility_row(session, subscription_id: str) -> dict | None:
    """The SLA, if its terms are known."""
    row = session.execute(select(t.eligibility).where(t.eligibility.c.subscription_id == subscription_id,
                                                      t.eligibility.c.terms_sequence.is_not(None))).first()
    return dict(row._mapping) if row else None


def eligibility_of(session, urn: str) -> list[dict]:
    """The school's SLAs whose terms are known (an ending learnt before its SLA's start is not one yet)."""
    rows = session.execute(select(t.eligibility).where(t.eligibility.c.urn == urn,
                                                       t.eligibility.c.terms_sequence.is_not(None))
                           .order_by(t.eligibility.c.period_start))
    found = [_plain(r) for r in rows]
    parts: dict[str, list] = {}
    for row in session.execute(select(t.eligibility_components).where(t.eligibility_components.c.subscription_id.in_(
            [r["subscription_id"] for r in found])).order_by(t.eligibility_components.c.offering_code)):
        parts.setdefault(row.subscription_id, []).append(
            {"offering_code": row.offering_code, "service_area": row.service_area, "included_places": row.included_places})
    return [{**r, "components": parts.get(r["subscription_id"], [])} for r in found]


def replace_components(session, subscription_id: str, components) -> None:
    """A bundle's included offerings, as its newest terms state them."""
    session.execute(delete(t.eligibility_components).where(t.eligibility_components.c.subscription_id == subscription_id))
    for part in {c.offering_code: c for c in components}.values():
        session.execute(insert(t.eligibility_components).values(
            subscription_id=subscription_id, offering_code=part.offering_code, service_area=part.service_area,
            included_places=part.included_places))


def _components_of(offering_code: str):
    """A bundle's component for `offering_code` with its bundle's school and cover (period, endings)."""
    e, c = t.eligibility, t.eligibility_components
    return (select(e.c.subscription_id, e.c.urn, e.c.period_start, e.c.period_end, c.c.included_places)
            .join(c, c.c.subscription_id == e.c.subscription_id)
            .where(c.c.offering_code == offering_code, e.c.terms_sequence.is_not(None)))


def entitlements(session, urn: str, offering_code: str) -> list[dict]:
    """The school's cover for an offering: its own SLAs of it, and bundles that include it (each counted
    as if bought separately, with the component's included places and no delegate places)."""
    rows = session.execute(select(t.eligibility).where(t.eligibility.c.urn == urn,
                                                       t.eligibility.c.offering_code == offering_code))
    own = [dict(r._mapping) for r in rows]
    bundled = [{**dict(r._mapping), "offering_code": offering_code, "quantity": 0, "edition_year": None,
                "delegate_places_used_before": 0,
                "component": True}
               for r in session.execute(_components_of(offering_code).where(t.eligibility.c.urn == urn))]
    return own + bundled


def subscribed_urns(session, offering_code: str, first: dt.date, last: dt.date) -> set[str]:
    """Schools covered for the offering some time in first..last, by an SLA of it or a bundle including it."""
    rows = session.execute(select(t.eligibility.c.urn).where(
        t.eligibility.c.offering_code == offering_code, t.eligibility.c.period_start <= last,
        t.eligibility.c.period_end >= first))
    parts = session.execute(_components_of(offering_code).where(
        t.eligibility.c.period_start <= last, t.eligibility.c.period_end >= first))
    return {r.urn for r in rows} | {r.urn for r in parts}


def put_offering(session, values: dict, sequence: int | None) -> bool:
    values = dict(values)
    return _put_if_newer(session, t.offerings, {"offering_code": values.pop("offering_code")}, values, sequence)


def offering(session, code: str) -> dict | None:
    row = session.execute(select(t.offerings).where(t.offerings.c.offering_code == code)).first()
    return dict(row._mapping) if row else None


def put_edition_price(session, code: str, year: int, values: dict, sequence: int | None) -> bool:
    return _put_if_newer(session, t.edition_prices, {"offering_code": code, "edition_year": year}, values, sequence)


def edition_price(session, code: str, year: int) -> dict | None:
    row = session.execute(select(t.edition_prices).where(t.edition_prices.c.offering_code == code,
                                                         t.edition_prices.c.edition_year == year)).first()
    return dict(row._mapping) if row else None


# ------------------------------------------------------------ contacts
_CONTACT_COPY_COLUMNS = tuple(f.name for f in dataclasses.fields(ContactCopy))


def contact_copy(session, contact_id: str) -> ContactCopy:
    """The person as learnt from events (an empty row if unknown), locked for this transaction."""
    row = _locked_row(session, t.contacts, {"contact_id": contact_id}, {"active": False, "erased": False})
    return ContactCopy(**{k: row[k] for k in _CONTACT_COPY_COLUMNS})


def save_contact_copy(session, copy: ContactCopy) -> None:
    values = {k: getattr(copy, k) for k in _CONTACT_COPY_COLUMNS if k != "contact_id"}
    session.execute(update(t.contacts).where(t.contacts.c.contact_id == copy.contact_id).values(**values))


def contact(session, contact_id: str) -> dict | None:
    """The person in their role; None if unknown or erased."""
    row = session.execute(select(t.contacts).where(t.contacts.c.contact_id == contact_id,
                                                   t.contacts.c.role.is_not(None))).first()
    return dict(row._mapping) if row else None


def put_contact_role(session, contact_id: str, urn: str, role: str, may_commit_spending: bool, active: bool,
                     sequence: int | None) -> bool:
    """One role of the person at the school, unless a newer event already set that role."""
    return _put_if_newer(session, t.contact_roles, {"contact_id": contact_id, "urn": urn, "role": role},
                         {"may_commit_spending": may_commit_spending, "active": active}, sequence)


def erase_contact_roles(session, contact_id: str) -> None:
    session.execute(delete(t.contact_roles).where(t.contact_roles.c.contact_id == contact_id))


def erase_person_elsewhere(session, contact_id: str, names: list[str]) -> dict[str, int]:
    """The person's name out of every peer-review report that names it, and the person out of the outbox,
    the audit trail and the stored answers to retried requests (`shared.erasure`), in the caller's
    transaction."""
    redacted = 0
    names = [n for n in names if n]
    if names:
        mentions = [func.lower(t.peer_reviews.c.report).contains(n.lower(), autoescape=True) for n in names]
        for row in session.execute(select(t.peer_reviews.c.review_id, t.peer_reviews.c.report)
                                   .where(t.peer_reviews.c.report.is_not(None), or_(*mentions))).all():
            text, changed = erasure.redact_text(row.report, names)
            if changed:
                session.execute(update(t.peer_reviews).where(t.peer_reviews.c.review_id == row.review_id)
                                .values(report=text))
                redacted += 1
    counts = erasure.erase_person(session, contact_id=contact_id, outbox=t.outbox, inbox=t.inbox,
                                  audit_log=t.audit_log, idempotency_keys=t.idempotency_keys, known_values=names)
    return {**counts, "peer_review_reports": redacted}


def has_active_role(session, contact_id: str, urn: str) -> bool:
    """The person holds some active role at the school (whatever their newest event was about)."""
    return session.execute(select(t.contact_roles.c.role).where(
        t.contact_roles.c.contact_id == contact_id, t.contact_roles.c.urn == urn,
        t.contact_roles.c.active.is_(True)).limit(1)).first() is not None


def may_commit_spending(session, contact_id: str, urn: str) -> bool:
    """The person holds an active role at the school that may commit its spending."""
    return session.execute(select(t.contact_roles.c.role).where(
        t.contact_roles.c.contact_id == contact_id, t.contact_roles.c.urn == urn,
        t.contact_roles.c.active.is_(True), t.contact_roles.c.may_commit_spending.is_(True)).limit(1)).first() is not None


def move_contacts(session, old_urn: str, new_urn: str) -> None:
    session.execute(update(t.contacts).where(t.contacts.c.urn == old_urn).values(urn=new_urn))
    roles = t.contact_roles
    for row in session.execute(select(roles).where(roles.c.urn == old_urn)).all():
        keys = {"contact_id": row.contact_id, "role": row.role}
        there = [roles.c[k] == v for k, v in keys.items()]
        # the role may already be recorded at the academy (events in any order): the newer one stays
        put_contact_role(session, row.contact_id, new_urn, row.role, row.may_commit_spending, row.active, row.sequence)
        session.execute(delete(roles).where(*there, roles.c.urn == old_urn))
    session.execute(update(t.reviewers).where(t.reviewers.c.urn == old_urn).values(urn=new_urn))


# ------------------------------------------------------------ calendars
def set_la_term_dates(session, la: str, year: int, periods: list[dict]) -> None:
    _upsert(session, t.la_term_dates, {"local_authority": la, "academic_year": year}, {"periods": periods})


def set_school_term_dates(session, urn: str, year: int, periods: list[dict]) -> None:
    _upsert(session, t.school_term_dates, {"urn": urn, "academic_year": year}, {"periods": periods})


def set_inset_days(session, urn: str, year: int, days: list[dt.date]) -> None:
    first, last = dt.date(year, 9, 1), dt.date(year + 1, 8, 31)
    session.execute(delete(t.inset_days).where(t.inset_days.c.urn == urn, t.inset_days.c.day >= first,
                                               t.inset_days.c.day <= last))
    for day in days:
        session.execute(insert(t.inset_days).values(urn=urn, day=day))


def copy_calendar(session, old_urn: str, new_urn: str, from_day: dt.date) -> None:
    """A converted school keeps its INSET days and own term dates from the conversion date on."""
    for row in session.execute(select(t.inset_days).where(t.inset_days.c.urn == old_urn, t.inset_days.c.day >= from_day)):
        _upsert(session, t.inset_days, {"urn": new_urn, "day": row.day}, {})
    for row in session.execute(select(t.school_term_dates).where(t.school_term_dates.c.urn == old_urn)):
        _upsert(session, t.school_term_dates, {"urn": new_urn, "academic_year": row.academic_year},
                {"periods": row.periods})


@functools.lru_cache(maxsize=1)
def default_la_term_dates() -> dict[tuple[str, int], cal.TermDates]:
    """Term dates shipped with the service as data (Buckinghamshire 2025/26 and 2026/27)."""
    text = resources.files("scheduling").joinpath("data/la_term_dates.json").read_text(encoding="utf-8")
    return cal.defaults_from_data(json.loads(text))


def la_term_dates(session, la: str, year: int) -> cal.TermDates | None:
    row = session.execute(select(t.la_term_dates).where(t.la_term_dates.c.local_authority == la,
                                                        t.la_term_dates.c.academic_year == year)).first()
    if row:
        return cal.term_dates_from_dict(year, row.periods)
    return default_la_term_dates().get((la, year))


def calendars(session, year: int, urns=None) -> dict[str, cal.SchoolCalendar]:
    """Each school's calendar for the academic year; schools whose LA has no term dates are left out."""
    rows = school_rows(session, urns)
    own = {r.urn: cal.term_dates_from_dict(year, r.periods)
           for r in session.execute(select(t.school_term_dates).where(t.school_term_dates.c.academic_year == year))}
    first, last = dt.date(year, 9, 1), dt.date(year + 1, 8, 31)
    insets: dict[str, list] = {}
    for r in session.execute(select(t.inset_days).where(t.inset_days.c.day >= first, t.inset_days.c.day <= last)):
        insets.setdefault(r.urn, []).append(r.day)
    la_cache: dict[str, cal.TermDates | None] = {}
    found = {}
    for urn, row in rows.items():
        la = cal.la_key(row.get("local_authority"))
        if la not in la_cache:
            la_cache[la] = la_term_dates(session, la, year)
        la_dates = la_cache[la] or own.get(urn)
        if la_dates is None:
            continue
        found[urn] = cal.calendar_for(urn, row.get("establishment_type"), la_dates, own.get(urn), insets.get(urn, ()))
    return found


# ------------------------------------------------------------ reviewers and peer reviews
def upsert_reviewer(session, reviewer_id: str, urn: str, trained: bool, can_lead: bool, unavailable: list[str]) -> None:
    _upsert(session, t.reviewers, {"reviewer_id": reviewer_id},
            {"urn": urn, "trained": trained, "can_lead": can_lead, "unavailable": unavailable})


def reviewer_rows(session) -> list[dict]:
    return [dict(r._mapping) for r in session.execute(select(t.reviewers).order_by(t.reviewers.c.reviewer_id))]


def review_problem(session, cycle: int, host_urns, days: int, team_size: int,
                   offering_code: str | None = None) -> pr.Problem:
    """The planner's view of the cycle: every school known as a member (now or before) with its calendar and
    MAT history, every reviewer; with `offering_code`, the schools subscribed to it in the cycle (the only
    ones reviewers may come from)."""
    rows = member_rows(session)
    calendars_ = calendars(session, cycle)
    history = mat_history(session)
    schools = {}
    for urn, row in rows.items():
        if urn not in calendars_:
            continue
        mats = history.get(urn) or ((dt.date(cycle, 9, 1), row["mat_id"]),)
        closed = row.get("closed_on")
        calendar_ = calendars_[urn]
        if closed is not None:  # a closed school is open on no day from its closing date
            periods = tuple(p for p in calendar_.term_dates.periods if p.start < closed)
            periods = tuple(p if p.end < closed else cal.TermPeriod(p.term, p.start, closed - dt.timedelta(days=1))
                            for p in periods if p.start <= closed - dt.timedelta(days=1))
            calendar_ = cal.SchoolCalendar(urn, cal.TermDates(cycle, periods), calendar_.inset_days)
        schools[urn] = pr.School(urn=urn, postcode=row["postcode"], calendar=calendar_, mats=mats)
    for urn, row in rows.items():  # a converted school is one school on both sides of its conversion date
        old = row.get("predecessor_urn")
        closed = rows[old].get("closed_on") if old in rows else None
        if urn in schools and old in schools and closed is not None:
            unclipped = dataclasses.replace(schools[old], calendar=calendars_[old])
            schools[old], schools[urn] = pr.succession(unclipped, schools[urn], closed if isinstance(closed, dt.date)
                                                          else dt.date.fromisoformat(closed))
    # a reviewer is unavailable on their own dates and on any day the diary has them elsewhere (a network
    # meeting, a course, a coaching session): reviews themselves are the planner's to place
    busy: dict[str, set] = {}
    for entry in diary_entries(session, first=dt.date(cycle, 9, 1), last=dt.date(cycle + 1, 8, 31),
                               kinds=[k for k in di.KINDS if k != di.PEER_REVIEW]):
        busy.setdefault(entry.person_id, set()).add(entry.day)
    reviewers = {}
    for r in reviewer_rows(session):
        if r["urn"] in schools:
            unavailable = frozenset(dt.date.fromisoformat(d) for d in r["unavailable"]) | busy.get(r["reviewer_id"], set())
            reviewers[r["reviewer_id"]] = pr.Reviewer(r["reviewer_id"], r["urn"], r["trained"], r["can_lead"],
                                                      frozenset(unavailable))
    hosts = tuple(pr.HostRequest(u, days, team_size) for u in sorted(host_urns) if u in schools)
    subscribed = (None if offering_code is None else
                  frozenset(subscribed_urns(session, offering_code, dt.date(cycle, 9, 1), dt.date(cycle + 1, 8, 31))))
    return pr.Problem(cycle=cycle, schools=schools, reviewers=reviewers, hosts=hosts, subscribed=subscribed)


def cycle(session, number: int) -> dict | None:
    row = session.execute(select(t.review_cycles).where(t.review_cycles.c.cycle == number)).first()
    return dict(row._mapping) if row else None


def add_cycle(session, number: int, offering_code: str, method: str, parts: list[str], days: int, team_size: int) -> None:
    session.execute(insert(t.review_cycles).values(cycle=number, offering_code=offering_code, method=method,
                                                   parts=parts, days=days, team_size=team_size))


def add_review(session, review_id: str, cycle_: int, review: pr.Review) -> None:
    session.execute(insert(t.peer_reviews).values(
        review_id=review_id, cycle=cycle_, host_urn=review.host_urn, dates=[d.isoformat() for d in review.dates],
        team=[list(m) for m in review.team], status="scheduled"))


def update_review(session, review_id: str, review: pr.Review | None, status: str = "scheduled") -> None:
    values = {"status": status}
    if review is not None:
        values |= {"host_urn": review.host_urn, "dates": [d.isoformat() for d in review.dates],
                   "team": [list(m) for m in review.team]}
    session.execute(update(t.peer_reviews).where(t.peer_reviews.c.review_id == review_id).values(**values))


def reviews_of_cycle(session, cycle_: int, status: str | None = "scheduled") -> list[tuple[str, pr.Review, dict]]:
    query = select(t.peer_reviews).where(t.peer_reviews.c.cycle == cycle_).order_by(t.peer_reviews.c.review_id)
    if status:
        query = query.where(t.peer_reviews.c.status == status)
    return [(r.review_id, to_review(r), dict(r._mapping)) for r in session.execute(query)]


def to_review(row) -> pr.Review:
    return pr.Review(row.host_urn, tuple(dt.date.fromisoformat(d) for d in row.dates), tuple(tuple(m) for m in row.team))


def review_row(session, review_id: str) -> dict | None:
    row = session.execute(select(t.peer_reviews).where(t.peer_reviews.c.review_id == review_id)).first()
    return dict(row._mapping) if row else None


def cycles_touching(session, day: dt.date) -> list[int]:
    return [r.cycle for r in session.execute(select(t.review_cycles.c.cycle)) if dt.date(r.cycle + 1, 8, 31) >= day]


def set_report(session, review_id: str, report: str) -> None:
    session.execute(update(t.peer_reviews).where(t.peer_reviews.c.review_id == review_id).values(report=report))


# ------------------------------------------------------------ networks and meetings
def add_network(session, values: dict) -> None:
    session.execute(insert(t.networks).values(**values))


def network(session, network_id: str) -> dict | None:
    row = session.execute(select(t.networks).where(t.networks.c.network_id == network_id)).first()
    return dict(row._mapping) if row else None


def network_by_name(session, name: str) -> dict | None:
    row = session.execute(select(t.networks).where(t.networks.c.name == name)).first()
    return dict(row._mapping) if row else None


def networks(session) -> list[dict]:
    return [dict(r._mapping) for r in session.execute(select(t.networks))]


def update_network(session, network_id: str, **values) -> None:
    session.execute(update(t.networks).where(t.networks.c.network_id == network_id).values(**values))


def meetings(session, network_id: str | None = None) -> list[dict]:
    query = select(t.meetings).order_by(t.meetings.c.day)
    if network_id:
        query = query.where(t.meetings.c.network_id == network_id)
    return [dict(r._mapping) for r in session.execute(query)]


def add_meeting(session, values: dict) -> None:
    session.execute(insert(t.meetings).values(**values))


def update_meeting(session, meeting_id: str, **values) -> None:
    session.execute(update(t.meetings).where(t.meetings.c.meeting_id == meeting_id).values(**values))


# ------------------------------------------------------------ courses, sessions, bookings
def add_course(session, values: dict) -> None:
    session.execute(insert(t.courses).values(**values))


def course(session, code: str) -> dict | None:
    row = session.execute(select(t.courses).where(t.courses.c.course_code == code)).first()
    return dict(row._mapping) if row else None


def add_session(session, values: dict) -> None:
    session.execute(insert(t.sessions).values(**values))


def session_row(session, session_id: str, lock: bool = False) -> dict | None:
    query = select(t.sessions).where(t.sessions.c.session_id == session_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    return dict(row._mapping) if row else None


def bookings_of(session, session_id: str) -> list[dict]:
    rows = session.execute(select(t.bookings).where(t.bookings.c.session_id == session_id)
                           .order_by(t.bookings.c.position))
    return [dict(r._mapping) for r in rows]


def add_booking(session, values: dict) -> None:
    session.execute(insert(t.bookings).values(**values))


def booking(session, booking_id: str) -> dict | None:
    row = session.execute(select(t.bookings).where(t.bookings.c.booking_id == booking_id)).first()
    return dict(row._mapping) if row else None


def update_booking(session, booking_id: str, **values) -> None:
    session.execute(update(t.bookings).where(t.bookings.c.booking_id == booking_id).values(**values))


def included_used(session, subscription_ids, offering_code: str | None = None) -> dict[str, int]:
    """Included places taken under each SLA; with `offering_code`, only on that offering's courses (a
    bundle's components each have their own allowance under the one subscription)."""
    query = select(t.bookings.c.subscription_id, func.count()).where(
        t.bookings.c.subscription_id.in_(list(subscription_ids)), t.bookings.c.status == "confirmed",
        t.bookings.c.price_basis == "included_place")
    if offering_code is not None:
        query = (query.join(t.sessions, t.sessions.c.session_id == t.bookings.c.session_id)
                 .join(t.courses, t.courses.c.course_code == t.sessions.c.course_code)
                 .where(t.courses.c.offering_code == offering_code))
    rows = session.execute(query.group_by(t.bookings.c.subscription_id))
    return {sid: n for sid, n in rows}


def attendance_of(session, booking_id: str) -> dict | None:
    row = session.execute(select(t.attendance).where(t.attendance.c.booking_id == booking_id)).first()
    return dict(row._mapping) if row else None


def add_attendance(session, values: dict) -> None:
    session.execute(insert(t.attendance).values(**values))


# ------------------------------------------------------------ the one diary
def diary_entries(session, people=None, first: dt.date | None = None, last: dt.date | None = None,
                  kinds=None) -> list[di.Entry]:
    """Who is busy on which day (all four kinds unless `kinds`), optionally for some people and dates."""
    query = select(t.diary)
    if people is not None:
        query = query.where(t.diary.c.person_id.in_(list(people)))
    if first is not None:
        query = query.where(t.diary.c.day >= first)
    if last is not None:
        query = query.where(t.diary.c.day <= last)
    if kinds is not None:
        query = query.where(t.diary.c.kind.in_(list(kinds)))
    return [di.Entry(r.person_id, r.day, r.kind, r.ref_id, r.what) for r in session.execute(query)]


def add_diary(session, entries) -> None:
    rows = [dataclasses.asdict(entry) for entry in entries]
    if rows:  # one executemany: a county's plan writes thousands of reviewer-days
        session.execute(insert(t.diary), rows)


def remove_diary(session, ref_id: str) -> None:
    session.execute(delete(t.diary).where(t.diary.c.ref_id == ref_id))


# ------------------------------------------------------------ coaching
def add_coaching_pair(session, values: dict) -> None:
    session.execute(insert(t.coaching_pairs).values(**values))


def coaching_pair(session, pair_id: str, lock: bool = False) -> dict | None:
    query = select(t.coaching_pairs).where(t.coaching_pairs.c.pair_id == pair_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    return dict(row._mapping) if row else None


def active_coaching_pairs(session) -> list[dict]:
    rows = session.execute(select(t.coaching_pairs).where(t.coaching_pairs.c.status == "active")
                           .order_by(t.coaching_pairs.c.pair_id))
    return [dict(r._mapping) for r in rows]


def add_coaching_session(session, values: dict) -> None:
    session.execute(insert(t.coaching_sessions).values(**values))


def coaching_sessions_of(session, pair_id: str) -> list[dict]:
    rows = session.execute(select(t.coaching_sessions).where(t.coaching_sessions.c.pair_id == pair_id)
                           .order_by(t.coaching_sessions.c.day))
    return [dict(r._mapping) for r in rows]
