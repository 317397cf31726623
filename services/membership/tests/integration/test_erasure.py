"""A person's erasure reaches membership's outbox and audit trail, in the erasure's own transaction
(SQLite and PostgreSQL: the `stores` fixture)."""
import datetime as dt
import json

from sqlalchemy import insert, select

from membership.adapters.tables import audit_log, outbox
from membership.service_layer import commands, handlers
from shared.messaging_tables import utcnow

D = dt.date


def _bodies(stores):
    with stores.read() as session:
        return [(r.event_type, r.sent_at, json.loads(r.body))
                for r in session.execute(select(outbox).order_by(outbox.c.id))]


def _audit(stores, contact_id=None, subject="user-1"):
    with stores.database.transaction() as session:
        session.execute(insert(audit_log).values(
            at=utcnow(), subject=subject, contact_id=contact_id, method="POST", route="/x", status=201,
            outcome="done"))
        session.commit()


class TestErasureReachesThePlumbing:
    def _people(self, stores):
        handlers.join_organisation(stores(), commands.JoinOrganisation(id="TR01234", kind="mat", name="Chiltern Learning Trust",
                                              joined_on=D(2020, 1, 1)))
        ceo = handlers.add_organisation_contact(stores(), "TR01234", commands.AddOrganisationContact(
            display_name="C. Eo", email="ceo@chiltern.example", role="ceo", effective_date=D(2020, 4, 1)))
        other = handlers.add_organisation_contact(stores(), "TR01234", commands.AddOrganisationContact(
            display_name="F. Inance", email="fin@chiltern.example", role="finance_contact",
            effective_date=D(2020, 4, 1)))
        return ceo["contact_id"], other["contact_id"]

    def test_sent_and_unsent_outbox_bodies_lose_the_persons_name_and_email_but_keep_their_id(self, stores):
        ceo, other = self._people(stores)
        with stores.database.transaction() as session:  # the first event went out already; the rest wait
            first = session.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().first()
            session.execute(outbox.update().where(outbox.c.id == first).values(sent_at=utcnow()))
            session.commit()
        assert "ceo@chiltern.example" in json.dumps([body for _, _, body in _bodies(stores)])

        handlers.erase_contact(stores(), ceo)

        events = _bodies(stores)
        text = json.dumps([body for _, _, body in events])
        assert "C. Eo" not in text and "ceo@chiltern.example" not in text
        theirs = [body["payload"] for t, _, body in events
                  if t == "organisation_contact_role_changed" and body["payload"]["contact_id"] == ceo]
        assert theirs and all(p["display_name"] == "[erased]" and p["email"] is None for p in theirs)
        assert [p["organisation_name"] for p in theirs][0] == "Chiltern Learning Trust"  # an organisation's name stays
        # the other person's events are untouched; the erasure's own event names only the id
        assert "F. Inance" in text and "fin@chiltern.example" in text
        assert [b["payload"] for t, _, b in events if t == "contact_erased"] == [{"contact_id": ceo}]
        assert any(sent is not None for t, sent, b in events if b["payload"].get("contact_id") == ceo)

    def test_the_persons_audit_rows_lose_their_subject_and_keep_the_fact(self, stores):
        ceo, other = self._people(stores)
        _audit(stores, contact_id=ceo, subject="idp|ceo")
        _audit(stores, contact_id=None, subject=ceo)
        _audit(stores, contact_id=other, subject="idp|fin")

        handlers.erase_contact(stores(), ceo)

        with stores.read() as session:
            rows = session.execute(select(audit_log.c.contact_id, audit_log.c.subject, audit_log.c.route)
                                   .order_by(audit_log.c.id)).all()
        assert [(r.contact_id, r.subject, r.route) for r in rows] == [
            (ceo, None, "/x"), (None, None, "/x"), (other, "idp|fin", "/x")]


class TestEraseAgainAfterARestore:
    """A restore from a backup older than an erasure brings the person back; `erase-again`, fed the archived
    `contact_erased` events (as `partnership-ops tail` prints them), erases them once more."""

    def test_a_restored_person_is_erased_again_and_the_others_are_left(self, tmp_path, monkeypatch, capsys):
        import shutil

        from membership import cli
        from shared.db import Database

        live = tmp_path / "membership.db"
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{live}")
        units = cli.command_units(cli.load_config(str(cli.DEFAULT_CONFIG)))
        handlers.join_organisation(units(), commands.JoinOrganisation(id="TR01234", kind="mat", name="Chiltern Learning Trust",
                                             joined_on=D(2020, 1, 1)))
        people = [handlers.add_organisation_contact(units(), "TR01234", commands.AddOrganisationContact(**{
            "display_name": name, "email": f"{name[0].lower()}@chiltern.example", "role": role,
            "effective_date": D(2020, 4, 1)}))["contact_id"] for name, role in (("C. Eo", "ceo"),
                                                                                ("F. Inance", "finance_contact"))]
        ceo, other = people
        units.database.dispose()
        shutil.copy(live, tmp_path / "backup.db")  # the nightly backup, before the erasure
        erasing = cli.command_units(cli.load_config(str(cli.DEFAULT_CONFIG)))
        handlers.erase_contact(erasing(), ceo)
        with erasing.read() as session:
            archived = [json.loads(body) for (body,) in session.execute(
                select(outbox.c.body).where(outbox.c.event_type == "contact_erased"))]
        erasing.database.dispose()  # the last connection closed: SQLite folds its WAL into the file
        shutil.copy(tmp_path / "backup.db", live)  # the restore
        assert not live.with_name(live.name + "-wal").exists()
        lines = tmp_path / "erased.jsonl"
        lines.write_text("\n".join(json.dumps(e) for e in archived + [
            {"type": "contact_erased", "payload": {"contact_id": "00000000-0000-4000-8000-000000000000"}},
            {"type": "member_joined", "payload": {"urn": "100000"}}]) + "\n")

        assert cli.main(["erase-again", str(lines)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["erased"], report["already_erased"], report["unknown"]) == (
            [ceo], [], ["00000000-0000-4000-8000-000000000000"])
        restored = Database(f"sqlite:///{live}")
        with restored.reader() as session:
            assert handlers.export_contact(session, ceo)["display_name"] == "[erased]"
            assert handlers.export_contact(session, other)["display_name"] == "F. Inance"
            bodies = session.execute(select(outbox.c.event_type, outbox.c.body)).all()
        restored.dispose()
        assert not [b for _, b in bodies if "C. Eo" in b or "c@chiltern.example" in b]
        assert [t for t, _ in bodies].count("contact_erased") == 1  # published again, for the consumers
        # run twice: nothing more to do
        assert cli.main(["erase-again", str(lines)]) == 0
        assert json.loads(capsys.readouterr().out)["already_erased"] == [ceo]
