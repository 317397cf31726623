"""Property: whatever rows a register file holds, importing it again publishes nothing and changes nothing,
and every row is either a member or a reported rejection."""
import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from membership.adapters import reference, repository
from membership.service_layer import handlers

from .conftest import Uows
from shared.db import Database

HEADER = "URN,LAESTAB,EstablishmentName,TypeOfEstablishment,PhaseOfEducation,NumberOfPupils,Postcode,Trusts\n"
TYPES = ["Community school", "Academy converter", "Foundation school", "Other independent school", "Wizardry"]
PHASES = ["Primary", "Secondary", "Not applicable", "Sixth"]

rows = st.lists(st.tuples(
    st.integers(99990, 100030), st.sampled_from(TYPES), st.sampled_from(PHASES),
    st.one_of(st.integers(0, 2000).map(str), st.sampled_from(["", "-1", "x"])),
    st.sampled_from(["HP17 8DS", "hp21 7rp", "NOWHERE"]), st.sampled_from(["", "Great Learners Trust"]),
    st.sampled_from(["Oak School", "St Mary's, \"the\" School", ""])), max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows)
def test_reimport_is_a_no_op_and_every_row_is_accounted_for(rows):
    import csv
    import io
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    for urn, kind, phase, pupils, postcode, trust, name in rows:
        writer.writerow([urn, "8252001", name, kind, phase, pupils, postcode, trust])
    text = out.getvalue()
    known = reference.load_establishment_types()
    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{Path(folder) / 'm.db'}")
        database.upgrade("membership:migrations")
        uows = Uows(database)
        try:
            first = handlers.import_schools(uows(), text, known_types=known, census_date=dt.date(2025, 10, 2),
                                            joined_on=dt.date(2026, 4, 1))
            assert first.joined + len(first.rejected) == len(rows)
            assert len(uows.events()) == first.joined
            with database.reader() as session:
                before = sorted((m.urn, m.name, m.number_on_roll) for m in repository.list_members(session))
            second = handlers.import_schools(uows(), text, known_types=known, census_date=dt.date(2025, 10, 2),
                                             joined_on=dt.date(2026, 4, 1))
            assert (second.joined, second.changed, second.census_updated) == (0, 0, 0)
            assert second.unchanged == first.joined and len(uows.events()) == first.joined
            with database.reader() as session:
                assert sorted((m.urn, m.name, m.number_on_roll) for m in repository.list_members(session)) == before
        finally:
            database.dispose()
