"""The DfE type list: packaged by default, a configured file that is missing stops the service with its path."""
from types import SimpleNamespace

import pytest

from membership.adapters import reference
from membership.dependencies import ReferenceData


def provider(config):
    dependency = ReferenceData()
    dependency.container = SimpleNamespace(config=config)
    return dependency


class TestReferenceData:
    def test_packaged_list_is_used_without_a_setting(self, monkeypatch):
        monkeypatch.delenv(reference.TYPES_ENV, raising=False)
        dependency = provider({"GIAS": {"establishment_types": ""}})
        dependency.setup()
        assert "Academy converter" in dependency.establishment_types
        assert len(dependency.establishment_types) == 39

    def test_a_configured_file_that_is_missing_names_the_path(self, tmp_path):
        missing = tmp_path / "types.csv"
        with pytest.raises(reference.ReferenceDataMissing) as error:
            provider({"GIAS": {"establishment_types": str(missing)}}).setup()
        assert str(missing) in str(error.value) and reference.TYPES_ENV in str(error.value)

    def test_a_file_without_the_type_column_is_refused(self, tmp_path):
        wrong = tmp_path / "types.csv"
        wrong.write_text("a,b\n1,2\n")
        with pytest.raises(reference.ReferenceDataMissing):
            provider({"GIAS": {"establishment_types": str(wrong)}}).setup()

    def test_windows_1252_and_utf8_files_are_read(self):
        assert reference.decode("St Mary’s".encode("cp1252")) == "St Mary’s"
        assert reference.decode("\ufeffSt Mary’s".encode("utf-8")) == "St Mary’s"
