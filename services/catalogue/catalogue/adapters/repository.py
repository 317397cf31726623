"""Reads and writes catalogue state through a unit of work's session (SQLAlchemy Core)."""
from __future__ import annotations

import datetime as dt
import zlib
from decimal import Decimal

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from catalogue.adapters.tables import (audit_log, contacts, editions, erased_contacts, idempotency_keys, inbox,
                                       members, offerings, outbox, subscriptions)
from catalogue.domain.member_copy import Mat, MemberCopy, RecordedRole, Roll, SchoolDetails
from catalogue.domain.model import (Component, Contact, Edition, Ending, Entitlement, Holding, KnownMember,
                                    Offering, Subscription, notice_date)
from catalogue.domain.pricing import Quote, Step, terms_from_json, terms_to_json
from shared import erasure

__all__ = ["terms_to_json", "terms_from_json"]


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


# -- members and contacts ----------------------------------------------------------------------
_MEMBER_FACTS = ("name", "establishment_type", "phase", "is_academy", "mat_id", "mat_name", "number_on_roll",
                 "census_date", "status", "joined_on", "left_on", "predecessor_urn", "successor_urn",
                 "details_version", "roll_version", "joined_version", "standing_version")


def _member_copy(row) -> MemberCopy:
    details = None
    if row.name is not None:
        details = SchoolDetails(name=row.name, establishment_type=row.establishment_type, phase=row.phase,
                                is_academy=row.is_academy,
                                mat=Mat(row.mat_id, row.mat_name) if row.mat_id is not None else None)
    roll = None if row.number_on_roll is None else Roll(row.number_on_roll, _date(row.census_date))
    return MemberCopy(urn=row.urn, details=details, details_version=row.details_version, roll=roll,
                      roll_version=row.roll_version, joined_on=_date(row.joined_on), joined_version=row.joined_version,
                      status=row.status, left_on=_date(row.left_on), standing_version=row.standing_version,
                      predecessor_urn=row.predecessor_urn, successor_urn=row.successor_urn)


def _member_values(copy: MemberCopy) -> dict:
    details, roll = copy.details, copy.roll
    mat = details.mat if details is not None else None
    return {
        "urn": copy.urn, "name": details and details.name,
        "establishment_type": details and details.establishment_type, "phase": details and details.phase,
        "is_academy": details and details.is_academy, "mat_id": mat and mat.id, "mat_name": mat and mat.name,
        "number_on_roll": roll and roll.number_on_roll, "census_date": roll and roll.census_date,
        "status": copy.status, "joined_on": copy.joined_on, "left_on": copy.left_on,
        "predecessor_urn": copy.predecessor_urn, "successor_urn": copy.successor_urn,
        "details_version": copy.details_version, "roll_version": copy.roll_version,
        "joined_version": copy.joined_version, "standing_version": copy.standing_version}


def _insert_ignoring_duplicates(session, table):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).on_conflict_do_nothing()


def member_copy(session, urn: str, *, for_update: bool = False) -> MemberCopy | None:
    """The catalogue's copy of a member as recorded, partial or not; `for_update` locks the row until
    the transaction ends (PostgreSQL; SQLite's writers are serialised already), so two events about one
    school applied at once never lose each other's facets."""
    query = select(members).where(members.c.urn == urn)
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.execute(query).first()
    return None if row is None else _member_copy(row)


def save_member_copy(session, copy: MemberCopy, *, new: bool) -> bool:
    """Write the copy back; a `new` one is inserted unless a concurrent event created the row first
    (returns False: nothing written, read it again locked and apply the event to that)."""
    values = _member_values(copy)
    if new:
        return session.execute(_insert_ignoring_duplicates(session, members).values(**values)).rowcount > 0
    session.execute(members.update().where(members.c.urn == copy.urn).values(
        **{k: values[k] for k in _MEMBER_FACTS}))
    return True


def member(session, urn: str) -> KnownMember | None:
    """The member as purchases, quotes and views see it; None if unknown or only partly known."""
    found = member_copy(session, urn)
    return None if found is None else found.known()


def successors(session) -> dict[str, str]:
    rows = session.execute(select(members.c.urn, members.c.successor_urn).where(members.c.successor_urn.is_not(None)))
    return {r.urn: r.successor_urn for r in rows}


def contact(session, contact_id: str, urn: str) -> Contact | None:
    """The person's strongest role at this member: active and allowed to spend first."""
    rows = session.execute(select(contacts).where(contacts.c.contact_id == contact_id, contacts.c.urn == urn)).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: (r.active and r.may_commit_spending, r.active, r.effective_date))
    return Contact(contact_id=best.contact_id, urn=best.urn, display_name=best.display_name, role=best.role,
                   may_commit_spending=best.may_commit_spending, active=best.active)


def authorised_buyers(session, urn: str) -> list[dict]:
    """Who may buy for this member now: active contacts whose role may commit its spending (ids only)."""
    rows = session.execute(select(contacts.c.contact_id, contacts.c.role)
                           .where(contacts.c.urn == urn, contacts.c.active.is_(True),
                                  contacts.c.may_commit_spending.is_(True))
                           .order_by(contacts.c.contact_id, contacts.c.role)).all()
    return [{"contact_id": r.contact_id, "role": r.role} for r in rows]


def _role_key(contact_id: str, urn: str, role: str):
    return and_(contacts.c.contact_id == contact_id, contacts.c.urn == urn, contacts.c.role == role)


_CONTACT_LOCKS = 0x636F6E74  # advisory lock namespace of this service's contact copies


def lock_contact(session, contact_id: str) -> None:
    """Hold the person's lock until the transaction ends (PostgreSQL; SQLite's writers are serialised
    already): an erasure and a role change applied at once could otherwise both miss the other, and a
    role inserted after the erasure deleted the person's roles would outlive the tombstone."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(contact_id.encode()) - 2 ** 31  # into int4
        session.execute(select(func.pg_advisory_xact_lock(_CONTACT_LOCKS, key)))


def recorded_role(session, contact_id: str, urn: str, role: str) -> RecordedRole | None:
    """What is recorded on one role of a person at a member."""
    row = session.execute(select(contacts.c.effective_date, contacts.c.version)
                          .where(_role_key(contact_id, urn, role))).first()
    return None if row is None else RecordedRole(effective_date=_date(row.effective_date), version=row.version)


def is_erased(session, contact_id: str) -> bool:
    return session.execute(select(erased_contacts.c.contact_id)
                           .where(erased_contacts.c.contact_id == contact_id)).first() is not None


def save_role(session, values: dict, *, new: bool) -> None:
    """Insert or replace one role of a person at a member (`values`: the contacts row)."""
    if new:
        session.execute(insert(contacts).values(**values))
    else:
        session.execute(contacts.update().where(_role_key(values["contact_id"], values["urn"], values["role"]))
                        .values(**values))


def erase_contact(session, contact_id: str, version: int | None) -> None:
    """Leave a tombstone, delete every role of the person and anonymise the SLAs they bought.
    The tombstone is written first: a role change committed later finds it (see `is_erased`).
    The person also goes from the outbox and the audit trail (`shared.erasure`), in the same transaction."""
    known = [*session.execute(select(contacts.c.display_name).where(contacts.c.contact_id == contact_id)).scalars(),
             *session.execute(select(subscriptions.c.purchased_by_name)
                              .where(subscriptions.c.purchased_by_contact_id == contact_id)).scalars()]
    session.execute(_insert_ignoring_duplicates(session, erased_contacts).values(contact_id=contact_id,
                                                                                 version=version))
    session.execute(contacts.delete().where(contacts.c.contact_id == contact_id))
    session.execute(subscriptions.update().where(subscriptions.c.purchased_by_contact_id == contact_id)
                    .values(purchased_by_name="(erased)", purchased_by_contact_id=None))
    erasure.erase_person(session, contact_id=contact_id, outbox=outbox, inbox=inbox, audit_log=audit_log,
                         idempotency_keys=idempotency_keys, known_values=known)


# -- offerings and editions --------------------------------------------------------------------
def _split(text: str) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(",") if p)


def _offering(row) -> Offering:
    return Offering(code=row.code, name=row.name, service_area=row.service_area, provider=row.provider,
                    vat_treatment=row.vat_treatment, eligible_phases=_split(row.eligible_phases),
                    description=row.description, eligible_types=_split(row.eligible_types), capacity=row.capacity,
                    withdrawn_on=row.withdrawn_on, sold_whole=row.sold_whole)


def offering(session, code: str) -> Offering | None:
    row = session.execute(select(offerings).where(offerings.c.code == code)).first()
    return None if row is None else _offering(row)


_OFFERING_LOCKS = 0x6F666672  # advisory lock namespace of this service's offerings (capacity)


def lock_offering(session, code: str) -> None:
    """Hold the offering's lock until the transaction ends, so that counting its places and taking one
    is one step: two purchases of the last place cannot both count it free (PostgreSQL: a transaction
    advisory lock, which also serialises with purchases whose count found nothing to lock; SQLite's
    writers are serialised already)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(code.encode()) - 2 ** 31  # into int4
        session.execute(select(func.pg_advisory_xact_lock(_OFFERING_LOCKS, key)))


def all_offerings(session, code: str | None = None) -> list[tuple[Offering, list[Edition]]]:
    """Every offering (or only the one with `code`) with its editions by year: two queries."""
    offering_query = select(offerings).order_by(offerings.c.code)
    edition_query = select(editions).order_by(editions.c.offering_code, editions.c.year)
    if code is not None:
        offering_query = offering_query.where(offerings.c.code == code)
        edition_query = edition_query.where(editions.c.offering_code == code)
    found = [_offering(r) for r in session.execute(offering_query)]
    by_code: dict[str, list[Edition]] = {o.code: [] for o in found}
    for row in session.execute(edition_query):
        by_code[row.offering_code].append(_edition(row))
    return [(o, by_code[o.code]) for o in found]


def add_offering(session, item: Offering) -> None:
    session.execute(insert(offerings).values(
        code=item.code, name=item.name, service_area=item.service_area, provider=item.provider,
        vat_treatment=item.vat_treatment, eligible_phases=",".join(item.eligible_phases),
        description=item.description, eligible_types=",".join(item.eligible_types), capacity=item.capacity,
        withdrawn_on=item.withdrawn_on, sold_whole=item.sold_whole))


def withdraw_offering(session, code: str, effective_date: dt.date) -> None:
    session.execute(offerings.update().where(offerings.c.code == code).values(withdrawn_on=effective_date))
    session.execute(editions.update().where(editions.c.offering_code == code).values(on_sale=False))


def entitlements_to_json(items) -> list[dict]:
    return [{"kind": e.kind, "quantity": e.quantity} for e in items]


def entitlements_from_json(data) -> tuple[Entitlement, ...]:
    return tuple(Entitlement(e["kind"], e["quantity"]) for e in (data or ()))


def components_to_json(items) -> list[dict]:
    """As `subscription_started` carries them (interface A)."""
    return [{"offering_code": c.offering_code, "offering_name": c.offering_name, "service_area": c.service_area,
             "vat_treatment": c.vat_treatment, "entitlements": entitlements_to_json(c.entitlements),
             "annual_price_pence": c.annual_price_pence} for c in items]


def components_from_json(data) -> tuple[Component, ...]:
    return tuple(Component(offering_code=c["offering_code"], offering_name=c["offering_name"],
                           service_area=c["service_area"], vat_treatment=c["vat_treatment"],
                           entitlements=entitlements_from_json(c["entitlements"]),
                           annual_price_pence=c["annual_price_pence"]) for c in (data or ()))


def _edition(row) -> Edition:
    return Edition(offering_code=row.offering_code, year=row.year, terms=terms_from_json(row.terms),
                   on_sale=row.on_sale, entitlements=entitlements_from_json(row.entitlements))


def edition(session, offering_code: str, year: int) -> Edition | None:
    row = session.execute(select(editions).where(editions.c.offering_code == offering_code,
                                                 editions.c.year == year)).first()
    return None if row is None else _edition(row)


def editions_of_year(session, year: int) -> dict[str, Edition]:
    return {r.offering_code: _edition(r) for r in session.execute(select(editions).where(editions.c.year == year))}


def add_edition(session, item: Edition) -> None:
    session.execute(insert(editions).values(offering_code=item.offering_code, year=item.year,
                                            terms=terms_to_json(item.terms), on_sale=item.on_sale,
                                            entitlements=entitlements_to_json(item.entitlements)))


def set_on_sale(session, offering_code: str, year: int, on_sale: bool) -> None:
    session.execute(editions.update().where(editions.c.offering_code == offering_code, editions.c.year == year)
                    .values(on_sale=on_sale))


# -- subscriptions -----------------------------------------------------------------------------
def live_periods(session, urn: str, offering_code: str) -> list[tuple[dt.date, dt.date]]:
    rows = session.execute(select(subscriptions.c.period_start, subscriptions.c.covered_until).where(
        subscriptions.c.urn == urn, subscriptions.c.offering_code == offering_code,
        subscriptions.c.covered_until >= subscriptions.c.period_start))
    return [(r.period_start, r.covered_until) for r in rows]


def holders(session, offering_code: str, start: dt.date, end: dt.date) -> int:
    """SLAs of an offering covering part of `start`..`end` (capacity)."""
    return session.execute(select(func.count()).select_from(subscriptions).where(
        subscriptions.c.offering_code == offering_code, subscriptions.c.period_start <= end,
        subscriptions.c.covered_until >= start, subscriptions.c.covered_until >= subscriptions.c.period_start)
    ).scalar_one()


def area_cover(session, on: dt.date, urn: str | None = None) -> dict[tuple[str, str], set[str]]:
    """(urn, service area) -> the offerings whose cover the school holds on that day through a live SLA
    (a bundle gives each included offering's, in that offering's area): who is a subscriber on `on`."""
    query = (select(subscriptions.c.urn, subscriptions.c.offering_code, subscriptions.c.components,
                    offerings.c.service_area)
             .join(offerings, offerings.c.code == subscriptions.c.offering_code)
             .where(subscriptions.c.period_start <= on, subscriptions.c.covered_until >= on))
    if urn is not None:
        query = query.where(subscriptions.c.urn == urn)
    found: dict[tuple[str, str], set[str]] = {}
    for row in session.execute(query):
        found.setdefault((row.urn, row.service_area), set()).add(row.offering_code)
        for part in row.components or ():
            found.setdefault((row.urn, part["service_area"]), set()).add(part["offering_code"])
    return found


def holds_area(session, urn: str, service_area: str, on: dt.date, *, other_than: str) -> bool:
    """Does the school hold the cover of another offering of this service area on that day (subscriber price)?"""
    return bool(area_cover(session, on, urn).get((urn, service_area), set()) - {other_than})


def school_holdings(session, urn: str) -> tuple[Holding, ...]:
    """What each of the school's live SLAs covers (its offering, and a bundle's included ones), and when."""
    rows = session.execute(select(subscriptions.c.offering_code, subscriptions.c.components,
                                  subscriptions.c.period_start, subscriptions.c.covered_until).where(
        subscriptions.c.urn == urn, subscriptions.c.covered_until >= subscriptions.c.period_start))
    return tuple(Holding(r.offering_code,
                         frozenset((r.offering_code, *(c["offering_code"] for c in r.components or ()))),
                         _date(r.period_start), _date(r.covered_until)) for r in rows)


def subscription_values(item: Subscription) -> dict:
    return dict(
        id=item.id, urn=item.urn, offering_code=item.offering_code, edition_year=item.edition_year,
        payer_type=item.payer_type, period_start=item.period_start, period_end=item.period_end, years=item.years,
        annual_price_pence=item.annual_price_pence, breakdown=item.quote.breakdown(),
        census_date=item.census_date, number_on_roll=item.number_on_roll, po_number=item.po_number,
        purchased_by_name=item.purchased_by_name, purchased_by_role=item.purchased_by_role,
        purchased_on=item.purchased_on, status=item.status, quantity=item.quantity,
        entitlements=entitlements_to_json(item.entitlements), purchased_by_contact_id=item.purchased_by_contact_id,
        continues_subscription_id=item.continues_subscription_id, origin=item.origin, auto_renew=item.auto_renew,
        covered_until=item.covered_until, components=components_to_json(item.components))


def add_subscription(session, item: Subscription) -> None:
    session.execute(insert(subscriptions).values(**subscription_values(item)))


def _subscription(row) -> Subscription:
    steps = tuple(Step(s["label"], Decimal(s["amount_pence"])) for s in row.breakdown)
    return Subscription(
        id=row.id, urn=row.urn, offering_code=row.offering_code, edition_year=row.edition_year,
        payer_type=row.payer_type, period_start=row.period_start, period_end=row.period_end, years=row.years,
        annual_price_pence=row.annual_price_pence,
        quote=Quote(row.annual_price_pence, steps, row.number_on_roll, row.quantity), census_date=row.census_date,
        number_on_roll=row.number_on_roll, po_number=row.po_number, purchased_by_name=row.purchased_by_name,
        purchased_by_role=row.purchased_by_role, purchased_on=row.purchased_on, status=row.status,
        quantity=row.quantity, entitlements=entitlements_from_json(row.entitlements),
        purchased_by_contact_id=row.purchased_by_contact_id, continues_subscription_id=row.continues_subscription_id,
        origin=row.origin, auto_renew=row.auto_renew, covered_until=row.covered_until,
        components=components_from_json(row.components))


def subscription(session, subscription_id: str) -> Subscription | None:
    row = session.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).first()
    return None if row is None else _subscription(row)


def subscription_row(session, subscription_id: str):
    return session.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).first()


def covering_from(session, urn: str, day: dt.date) -> list[Subscription]:
    """The school's SLAs that still cover `day` or anything after it, oldest first."""
    rows = session.execute(select(subscriptions).where(
        subscriptions.c.urn == urn, subscriptions.c.covered_until >= day,
        subscriptions.c.covered_until >= subscriptions.c.period_start).order_by(subscriptions.c.period_start,
                                                                                subscriptions.c.id))
    return [_subscription(r) for r in rows]


def of_offering_from(session, offering_code: str, day: dt.date) -> list[Subscription]:
    rows = session.execute(select(subscriptions).where(
        subscriptions.c.offering_code == offering_code, subscriptions.c.covered_until >= day,
        subscriptions.c.covered_until >= subscriptions.c.period_start).order_by(subscriptions.c.id))
    return [_subscription(r) for r in rows]


def record_ending(session, ending: Ending, *, status: str, cancelled_on: dt.date | None = None) -> None:
    session.execute(subscriptions.update().where(subscriptions.c.id == ending.subscription_id).values(
        covered_until=ending.covered_until, status=status, end_reason=ending.reason, ended_from=ending.effective_date,
        cancelled_on=cancelled_on, auto_renew=False))


def stop_renewal(session, subscription_id: str, cancelled_on: dt.date, reason: str) -> None:
    session.execute(subscriptions.update().where(subscriptions.c.id == subscription_id).values(
        auto_renew=False, cancelled_on=cancelled_on, end_reason=reason))


def renewal_of(session, subscription_id: str) -> Subscription | None:
    """The renewal that continues an SLA, if the round recorded one and it still covers something."""
    row = session.execute(select(subscriptions).where(
        subscriptions.c.continues_subscription_id == subscription_id, subscriptions.c.origin == "renewal",
        subscriptions.c.covered_until >= subscriptions.c.period_start)).first()
    return None if row is None else _subscription(row)


def confirm_renewal(session, subscription_id: str) -> None:
    session.execute(subscriptions.update().where(subscriptions.c.id == subscription_id).values(auto_renew=True))


def subscriptions_of(session, urn: str) -> list[dict]:
    rows = session.execute(select(subscriptions).where(subscriptions.c.urn == urn)
                           .order_by(subscriptions.c.period_start, subscriptions.c.offering_code))
    return [subscription_view(r) for r in rows]


def subscription_view(row) -> dict:
    view = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row._mapping.items()}
    view["price_breakdown"] = view.pop("breakdown")
    view["notice_date"] = None if row.period_end is None else _notice(row.period_end)
    return view


def _notice(period_end: dt.date) -> str:
    return notice_date(period_end).isoformat()


# -- renewal round (bulk) ----------------------------------------------------------------------
renewals = subscriptions.alias("renewals")


def due_for_renewal(session, windows: dict[str, tuple[dt.date, dt.date]]):
    """Rows of SLAs due to renew (auto-renewing, not yet continued by a renewal, still covered to their end,
    ending in their payer type's window) with their member and offering, in id order."""
    conditions = [and_(subscriptions.c.payer_type == payer, subscriptions.c.period_end.between(low, high))
                  for payer, (low, high) in windows.items()]
    query = (select(subscriptions.c.id, subscriptions.c.urn, subscriptions.c.offering_code,
                    subscriptions.c.payer_type, subscriptions.c.period_end, subscriptions.c.years,
                    subscriptions.c.quantity, subscriptions.c.po_number, members.c.name.label("school_name"),
                    members.c.establishment_type, members.c.phase, members.c.is_academy, members.c.mat_id,
                    members.c.mat_name, members.c.number_on_roll, members.c.census_date,
                    members.c.status.label("member_status"))
             .join(members, members.c.urn == subscriptions.c.urn)
             .where(subscriptions.c.auto_renew.is_(True),
                    subscriptions.c.covered_until == subscriptions.c.period_end, or_(*conditions),
                    ~select(renewals.c.id).where(renewals.c.continues_subscription_id == subscriptions.c.id,
                                                 renewals.c.origin == "renewal").exists())
             .order_by(subscriptions.c.id))
    return session.execute(query).all()


def latest_cover(session, since: dt.date) -> dict[tuple[str, str], dt.date]:
    """(urn, offering) -> the last day covered, for SLAs covering `since` or later (a school that
    already bought next year's edition is not renewed over it)."""
    rows = session.execute(select(subscriptions.c.urn, subscriptions.c.offering_code,
                                  func.max(subscriptions.c.covered_until).label("until")).where(
        subscriptions.c.covered_until >= since, subscriptions.c.covered_until >= subscriptions.c.period_start)
        .group_by(subscriptions.c.urn, subscriptions.c.offering_code))
    return {(r.urn, r.offering_code): r.until for r in rows}


def mark_expired(session, ids: list[str]) -> None:
    if ids:
        session.execute(update(subscriptions).where(subscriptions.c.id.in_(ids)).values(
            auto_renew=False, status="ended", end_reason="expired"))


def holdings(session):
    """(urn, service area, payer type, period_start, covered_until) of every SLA that covered something."""
    return session.execute(select(subscriptions.c.urn, offerings.c.service_area, subscriptions.c.payer_type,
                                  subscriptions.c.period_start, subscriptions.c.covered_until)
                           .join(offerings, offerings.c.code == subscriptions.c.offering_code)
                           .where(subscriptions.c.covered_until >= subscriptions.c.period_start)).all()
