"""Export and import of a service's state between SQLite and PostgreSQL, on the real databases:
exact round trips of every value kind, refusals (damaged archive, unknown revision,
non-empty target), PostgreSQL sequences after explicit ids, and the erase command."""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import uuid

import pytest
import sqlalchemy as sa

from partnership_ops import archive
from shared.db import Database

NAMES = ["Ada Lovelace", "Zoë Ó Súilleabháin", "李小龍"]


def fill(schema, url: str) -> dict:
    """Rows of every kind, awkward values included; returns the ids it used."""
    database = Database(url)
    schema.upgrade(database, schema.head())
    tables = schema.metadata.tables
    refs = [uuid.uuid4() for _ in NAMES]
    with database.transaction() as session:
        for index, (name, ref) in enumerate(zip(NAMES, refs), start=1):
            session.execute(tables["schools"].insert().values(
                id=index * 10, reference=ref, name=name, head_teacher=f"Head {name}" if index != 2 else None,
                opened_on=dt.date(1999 + index, 9, 1), inspected_at=dt.datetime(2026, 3, index, 9, 15, 30, 123456),
                inspected_at_utc=dt.datetime(2026, 3, index, 9, 15, 30, 654321, tzinfo=dt.timezone.utc),
                opens_at=dt.time(8, 45, 1, 5), rate=decimal.Decimal("8.2500") if index != 3 else decimal.Decimal("-0.0001"),
                ratio=0.1 + 0.2, is_academy=index % 2 == 0,
                terms={"model": "per_pupil", "rate": "8.25", "steps": [1, None, True], "ü": "é"} if index != 2 else None,
                logo=bytes(range(256)) if index == 1 else None, notes="line one\nline \"two\"\ttab"))
            session.execute(tables["visits"].insert().values(id=str(uuid.uuid4()), school_id=index * 10,
                                                             visitor_name=f"Visitor {name}", amount_pence=2**40 + index))
        outbox = tables["outbox"]
        for index in range(1, 6):
            session.execute(outbox.insert().values(
                event_id=str(uuid.uuid4()), event_type="school_opened", version=1, aggregate=f"school:{index}",
                body=json.dumps({"n": index, "name": NAMES[index % 3]}), created_at=dt.datetime(2026, 1, 1, 0, 0, index),
                next_attempt_at=dt.datetime(2026, 1, 1), attempts=index % 2,
                sent_at=dt.datetime(2026, 1, 2) if index <= 2 else None))
        for index, name in enumerate(NAMES[:2]):  # answers kept for retried requests, a person's name in each
            session.execute(tables["idempotency_keys"].insert().values(
                key=f"key-{index}", fingerprint="f" * 64, route="POST /visits", status=201,
                content_type="application/json", body=json.dumps({"visitor_name": f"Visitor {name}"}),
                created_at=dt.datetime(2026, 1, 4), completed_at=dt.datetime(2026, 1, 4)))
        for index in range(4):
            session.execute(tables["inbox"].insert().values(event_id=str(uuid.uuid4()), event_type="member_joined",
                                                            producer="membership", handled_at=dt.datetime(2026, 1, 3)))
        session.commit()
    database.dispose()
    return {"refs": refs}


def dump(url: str, table: str, order: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        reflected = sa.Table(table, metadata, autoload_with=engine)
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.select(reflected).order_by(sa.text(order)))]
    finally:
        engine.dispose()


def archive_members(path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def rewrite(path, changes: dict[str, bytes]) -> None:
    members = archive_members(path)
    members.update(changes)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class TestRoundTrip:
    @pytest.mark.parametrize("source,target", [("sqlite", "postgresql"), ("postgresql", "sqlite")])
    def test_every_value_kind_survives_export_and_import_exactly(self, probe_schema, both, tmp_path, source,
                                                                 target):
        schema = probe_schema(tmp_path)
        source_url, target_url = both[source].url("probe"), both[target].url("probe")
        fill(schema, source_url)
        first = tmp_path / "first.tar.gz"
        manifest = archive.export_service("probe", source_url, first, operator={"name": "bucks-learning-trust"},
                                          schema=schema)
        assert manifest["alembic_revision"] == schema.head()
        assert manifest["row_counts"] == {"event_sequences": 0, "idempotency_keys": 2, "inbox": 4, "outbox": 3, "schools": 3,
                                                                "visits": 3}
        assert manifest["operator"] == {"name": "bucks-learning-trust"}
        kinds = {c["name"]: c["kind"] for c in next(t for t in manifest["tables"] if t["name"] == "schools")["columns"]}
        assert kinds == {"id": "integer", "reference": "uuid", "name": "string", "head_teacher": "string",
                         "opened_on": "date", "inspected_at": "datetime", "inspected_at_utc": "datetime_utc",
                         "opens_at": "time", "rate": "decimal", "ratio": "float", "is_academy": "boolean",
                         "terms": "json", "logo": "binary", "notes": "string"}

        report = archive.import_service("probe", target_url, first, schema=schema)
        assert report["rows_loaded"] == {"event_sequences": 0, "idempotency_keys": 2, "inbox": 4, "outbox": 3, "schools": 3,
                                                                "visits": 3}
        assert (report["archive_revision"], report["migrated_to"]) == (schema.head(), schema.head())
        assert report["from_operator"] == "bucks-learning-trust"

        # Exported again from the target, every table file is byte-identical.
        second = tmp_path / "second.tar.gz"
        archive.export_service("probe", target_url, second, operator={"name": "bucks-learning-trust"}, schema=schema)
        first_files, second_files = archive_members(first), archive_members(second)
        for name in ("tables/schools.jsonl", "tables/visits.jsonl", "tables/inbox.jsonl", "tables/outbox.jsonl"):
            assert first_files[name] == second_files[name], name

        # And read back through typed columns, the values are equal in Python too.
        target_db = Database(target_url)
        with target_db.reader() as session:
            schools = schema.metadata.tables["schools"]
            rows = session.execute(sa.select(schools).order_by(schools.c.id)).mappings().all()
        target_db.dispose()
        assert [r["name"] for r in rows] == NAMES
        first_row = rows[0]
        assert first_row["rate"] == decimal.Decimal("8.2500") and rows[2]["rate"] == decimal.Decimal("-0.0001")
        assert first_row["ratio"] == 0.1 + 0.2
        assert first_row["inspected_at"] == dt.datetime(2026, 3, 1, 9, 15, 30, 123456)
        aware = first_row["inspected_at_utc"]
        if target == "sqlite":  # SQLite keeps no offset: the value is stored and read in UTC
            aware = aware.replace(tzinfo=dt.timezone.utc)
        assert aware == dt.datetime(2026, 3, 1, 9, 15, 30, 654321, tzinfo=dt.timezone.utc)
        assert first_row["opens_at"] == dt.time(8, 45, 1, 5)
        assert first_row["logo"] == bytes(range(256))
        assert first_row["terms"] == {"model": "per_pupil", "rate": "8.25", "steps": [1, None, True], "ü": "é"}
        assert rows[1]["terms"] is None and rows[1]["head_teacher"] is None
        assert [r["is_academy"] for r in rows] == [False, True, False]
        assert isinstance(first_row["reference"], uuid.UUID)

    def test_only_unsent_outbox_rows_travel_and_keep_their_order(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url, target_url = both["sqlite"].url("probe"), both["postgresql"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        archive.import_service("probe", target_url, path, schema=schema)
        sent_at = [c.name for c in sa.Table("outbox", sa.MetaData(),
                                            autoload_with=sa.create_engine(source_url)).columns].index("sent_at")
        unsent = [row for row in dump(source_url, "outbox", "id") if row[sent_at] is None]
        moved = dump(target_url, "outbox", "id")
        assert [(r[0], r[1]) for r in moved] == [(r[0], r[1]) for r in unsent] == [(3, moved[0][1]), (4, moved[1][1]),
                                                                                  (5, moved[2][1])]

    def test_postgresql_sequences_continue_above_the_loaded_ids(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url, target_url = both["sqlite"].url("probe"), both["postgresql"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        report = archive.import_service("probe", target_url, path, schema=schema)
        assert report["sequences_reset"] == {"outbox.id": 6, "schools.id": 31}
        engine = sa.create_engine(target_url)
        with engine.begin() as connection:
            new_school = connection.execute(sa.text(
                "INSERT INTO schools (reference, name, opened_on, is_academy) "
                "VALUES (:r, 'New', '2027-09-01', false) RETURNING id"), {"r": uuid.uuid4()}).scalar_one()
        engine.dispose()
        assert new_school == 31


class TestRefusals:
    def test_damaged_table_file_is_refused_before_the_database_is_touched(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url, target_url = both["sqlite"].url("probe"), both["sqlite"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        damaged = archive_members(path)["tables/schools.jsonl"].replace(b"Ada", b"Eve")
        rewrite(path, {"tables/schools.jsonl": damaged})
        with pytest.raises(archive.ArchiveError, match="tables/schools.jsonl does not match its SHA-256"):
            archive.import_service("probe", target_url, path, schema=schema)
        assert sa.inspect(sa.create_engine(target_url)).get_table_names() == []

    def test_edited_manifest_is_refused(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url = both["sqlite"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        manifest = json.loads(archive_members(path)["manifest.json"])
        manifest["row_counts"]["schools"] = 2
        rewrite(path, {"manifest.json": json.dumps(manifest).encode()})
        with pytest.raises(archive.ArchiveError, match="manifest.json does not match its checksum"):
            archive.import_service("probe", both["sqlite"].url("probe"), path, schema=schema)

    def test_truncated_archive_is_refused(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url = both["sqlite"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        path.write_bytes(path.read_bytes()[:-200])
        with pytest.raises(archive.ArchiveError):
            with archive.Archive(path) as opened:
                opened.verify()

    def test_revision_the_installed_service_does_not_know_is_refused(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url, target_url = both["sqlite"].url("probe"), both["postgresql"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        raw = json.loads(archive_members(path)["manifest.json"])
        raw["alembic_revision"] = "p999"
        manifest = json.dumps(raw).encode()
        rewrite(path, {"manifest.json": manifest,
                       "manifest.sha256": hashlib.sha256(manifest).hexdigest().encode()})
        with pytest.raises(archive.ImportRefused, match="revision 'p999'.*does not know"):
            archive.import_service("probe", target_url, path, schema=schema)

    def test_non_empty_target_is_refused_and_left_untouched(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url, target_url = both["sqlite"].url("probe"), both["postgresql"].url("probe")
        fill(schema, source_url)
        fill(schema, target_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        before = dump(target_url, "schools", "id")
        with pytest.raises(archive.ImportRefused, match="not empty: table .* holds"):
            archive.import_service("probe", target_url, path, schema=schema)
        assert dump(target_url, "schools", "id") == before

    def test_archive_of_another_service_is_refused(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path)
        source_url = both["sqlite"].url("probe")
        fill(schema, source_url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", source_url, path, schema=schema)
        with pytest.raises(archive.ArchiveError, match="archive of probe, not of billing"):
            archive.import_service("billing", both["sqlite"].url("billing"), path)


class TestErase:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    def test_erase_reports_and_removes_declared_personal_data_and_the_outbox(self, probe_schema, both, tmp_path,
                                                                                backend):
        schema = probe_schema(tmp_path, personal_data={"schools": ("head_teacher", "name"),
                                                       "visits": ("visitor_name",)})
        url = both[backend].url("probe")
        fill(schema, url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", url, path, schema=schema)
        report = archive.erase_personal_data("probe", url, archive_path=path, schema=schema)
        assert report["erased"] == [
            {"table": "schools", "column": "head_teacher", "values": 2, "replaced_with": None},
            {"table": "schools", "column": "name", "values": 3, "replaced_with": "[erased]"},
            {"table": "visits", "column": "visitor_name", "values": 3, "replaced_with": "[erased]"}]
        assert report["skipped"] == []
        assert report["declared"] == {"schools": ["head_teacher", "name"], "visits": ["visitor_name"]}
        assert report["outbox_events_deleted"] == 5 and report["values_erased"] == 8 and report["vacuumed"]
        assert report["stored_responses_deleted"] == 2 and not dump(url, "idempotency_keys", "key")
        assert {r[2] for r in dump(url, "schools", "id")} == {"[erased]"}
        assert {r[2] for r in dump(url, "visits", "id")} == {"[erased]"}
        assert [r[3] for r in dump(url, "schools", "id")] == [None, None, None]
        if backend == "sqlite":  # nothing left in the file's free pages either
            raw = open(url.removeprefix("sqlite:///"), "rb").read()
            assert not any(name.encode() in raw for name in ("Ada Lovelace", "Visitor"))
        # Erasing again finds nothing left.
        again = archive.erase_personal_data("probe", url, archive_path=path, schema=schema)
        assert again["values_erased"] == 0

    def test_a_declared_table_the_old_database_does_not_have_is_reported_as_skipped(self, probe_schema, both,
                                                                                        tmp_path):
        schema = probe_schema(tmp_path, personal_data={"schools": ("name",), "visits": ("visitor_name",)})
        url = both["sqlite"].url("probe")
        fill(schema, url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", url, path, schema=schema)
        engine = sa.create_engine(url)
        with engine.begin() as connection:  # an older revision of the database, without that table
            connection.exec_driver_sql("DROP TABLE visits")
        engine.dispose()
        report = archive.erase_personal_data("probe", url, archive_path=path, schema=schema)
        assert report["skipped"] == [{"table": "visits", "column": "visitor_name", "reason": "not in this database"}]
        assert report["erased"] == [{"table": "schools", "column": "name", "values": 3, "replaced_with": "[erased]"}]

    def test_erase_is_refused_without_a_verified_archive_of_that_service(self, probe_schema, both, tmp_path):
        schema = probe_schema(tmp_path, personal_data={"schools": ("name",)})
        url = both["sqlite"].url("probe")
        fill(schema, url)
        path = tmp_path / "a.tar.gz"
        archive.export_service("probe", url, path, schema=schema)
        rewrite(path, {"tables/visits.jsonl": b"{}\n"})
        with pytest.raises(archive.ArchiveError):
            archive.erase_personal_data("probe", url, archive_path=path, schema=schema)
        assert [r[2] for r in dump(url, "schools", "id")] == NAMES


    def test_a_declaration_naming_a_missing_column_is_refused(self, probe_schema, tmp_path):
        schema = probe_schema(tmp_path, personal_data={"schools": ("head_teacher", "headteacher_email")})
        with pytest.raises(LookupError, match="schools.headteacher_email"):
            archive.personal_data_of(schema)

    def test_a_service_without_a_declaration_cannot_be_erased(self, probe_schema, tmp_path):
        with pytest.raises(LookupError, match="declares no PERSONAL_DATA"):
            archive.personal_data_of(probe_schema(tmp_path, personal_data=None))


class TestCommandLine:
    def test_export_and_import_of_a_real_service_from_the_command_line(self, both, tmp_path):
        source, target = both["sqlite"].url("billing"), both["postgresql"].url("billing")
        Database(source).upgrade("billing:migrations")
        path = tmp_path / "billing.tar.gz"
        run = lambda *args: subprocess.run([sys.executable, "-m", "partnership_ops", *args], capture_output=True,
                                           text=True, timeout=120, cwd=tmp_path)
        exported = run("export", "--service", "billing", "--database", source, "--out", str(path),
                       "--operator", "bucks-learning-trust")
        assert exported.returncode == 0, exported.stderr
        assert json.loads(exported.stdout)["alembic_revision"] == archive.ServiceSchema.of("billing").head()
        imported = run("import", "--service", "billing", "--database", target, "--archive", str(path),
                       "--handover-to", "buckinghamshire-council", "--effective-date", "2027-04-01")
        assert imported.returncode == 0, imported.stderr
        report = json.loads(imported.stdout)
        assert report["handover_event"]["to_operator"] == "buckinghamshire-council"
        assert report["handover_event"]["from_operator"] == "bucks-learning-trust"
        assert report["rows_loaded"]["outbox"] == 0
        [row] = dump(target, "outbox", "id")
        body = json.loads(row[5])
        assert (body["type"], body["operator"], body["producer"]) == (
            "function_handed_over", "buckinghamshire-council", "billing")
        assert body["payload"] == {"function": "billing", "from_operator": "bucks-learning-trust",
                                   "to_operator": "buckinghamshire-council", "effective_date": "2027-04-01"}
        again = run("import", "--service", "billing", "--database", target, "--archive", str(path))
        assert again.returncode == 2 and "not empty" in json.loads(again.stderr)["refused"]
