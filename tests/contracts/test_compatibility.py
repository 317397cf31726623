"""The released-schema check: each kind of break a consumer would suffer is caught; additions are not.

Pure and fast: schemas are the real published `member_joined` v1 (and friends) changed in memory.
"""
from __future__ import annotations

import copy
import json

import pytest

from deploy import compatibility, contracts
from membership.messages.published import PUBLISHED

KEY = ("membership", "member_joined", 1)


def published(event_type: str = "member_joined", version: int = 1) -> dict:
    schema = dict(PUBLISHED.items())[(event_type, version)]
    return contracts.envelope_json_schema("membership", event_type, version, schema)


def payload(schema: dict) -> dict:
    return schema["properties"]["payload"]


def check(released: dict, current: dict) -> list[str]:
    return compatibility.problems({KEY: released}, {KEY: current})


@pytest.fixture
def released():
    return published()


@pytest.fixture
def current(released):
    return copy.deepcopy(released)


class TestEachBreakIsCaught:
    def test_removed_field(self, released, current):
        del payload(current)["properties"]["postcode"]
        payload(current)["required"].remove("postcode")
        assert check(released, current) == ["membership:member_joined.v1: payload.postcode: removed field"]

    def test_renamed_field(self, released, current):
        fields_ = payload(current)["properties"]
        fields_["post_code"] = fields_.pop("postcode")
        payload(current)["required"] = ["post_code" if f == "postcode" else f for f in payload(current)["required"]]
        assert check(released, current) == [
            "membership:member_joined.v1: payload.postcode: removed field (renamed to post_code?)",
            "membership:member_joined.v1: payload.post_code: new required field (events already published lack it)",
        ]

    def test_renamed_optional_field_is_still_a_removal(self, released, current):
        fields_ = payload(current)["properties"]
        fields_["post_code"] = fields_.pop("postcode")
        payload(current)["required"].remove("postcode")
        assert check(released, current) == [
            "membership:member_joined.v1: payload.postcode: removed field (renamed to post_code?)"]

    def test_changed_type(self, released, current):
        payload(current)["properties"]["number_on_roll"]["type"] = "string"
        assert check(released, current) == [
            "membership:member_joined.v1: payload.number_on_roll: changed type integer -> string"]

    def test_becoming_nullable_is_a_changed_type(self, released, current):
        payload(current)["properties"]["name"]["type"] = ["string", "null"]
        assert check(released, current) == [
            "membership:member_joined.v1: payload.name: changed type: became nullable (string -> null/string)"]

    def test_changed_format(self, released, current):
        assert payload(released)["properties"]["joined_on"]["format"] == "date"
        payload(current)["properties"]["joined_on"]["format"] = "date-time"
        assert check(released, current) == [
            "membership:member_joined.v1: payload.joined_on: changed format 'date' -> 'date-time'"]

    def test_new_required_field(self, released, current):
        payload(current)["properties"]["region"] = {"type": "string"}
        payload(current)["required"].append("region")
        assert check(released, current) == [
            "membership:member_joined.v1: payload.region: new required field (events already published lack it)"]

    def test_optional_field_becoming_required(self, released, current):
        assert "causation_id" in released["required"]
        assert "aggregate" not in released["required"]
        current["required"].append("aggregate")
        assert check(released, current) == [
            "membership:member_joined.v1: aggregate: became required (events already published may lack it)"]

    def test_narrowed_enum(self, released, current):
        assert "early_years_provider" in payload(released)["properties"]["kind"]["enum"]
        payload(current)["properties"]["kind"]["enum"].remove("early_years_provider")
        assert check(released, current) == [
            'membership:member_joined.v1: payload.kind: narrowed enum: "early_years_provider" no longer allowed']

    def test_widened_enum(self, released, current):
        payload(current)["properties"]["kind"]["enum"].append("college")
        assert check(released, current) == ['membership:member_joined.v1: payload.kind: widened enum: "college" added']

    def test_removed_event_type(self, released):
        assert compatibility.problems({KEY: released}, {}) == [
            "membership:member_joined.v1: removed event (released, no longer published; retire it only after "
            "its deprecation period: docs/events.md)"]

    def test_nested_field_removed(self, released, current):
        mat = payload(current)["properties"]["mat"]
        assert "id" in mat["properties"]
        del mat["properties"]["id"]
        mat["required"].remove("id")
        assert check(released, current) == ["membership:member_joined.v1: payload.mat.id: removed field"]

    def test_field_in_a_list_changed(self):
        schema = {"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}}}
        changed = copy.deepcopy(schema)
        changed["properties"]["items"]["items"]["properties"]["code"]["type"] = "integer"
        assert compatibility.breaking_changes(schema, changed) == ["items[].code: changed type string -> integer"]

    def test_tightened_rule(self, released, current):
        payload(current)["properties"]["name"]["maxLength"] = 10
        assert check(released, current) == [
            "membership:member_joined.v1: payload.name: changed rule maxLength: none -> 10"]

    def test_closing_the_schema_to_unknown_fields(self, released, current):
        payload(current)["additionalProperties"] = False
        assert check(released, current) == [
            "membership:member_joined.v1: payload: no longer allows unknown fields (additionalProperties: false)"]


class TestWhatIsAllowed:
    def test_added_optional_field(self, released, current):
        payload(current)["properties"]["region"] = {"type": "string", "description": "New."}
        assert check(released, current) == []

    def test_added_optional_field_in_a_nested_object(self, released, current):
        payload(current)["properties"]["mat"]["properties"]["region"] = {"type": "string"}
        assert check(released, current) == []

    def test_changed_descriptions(self, released, current):
        payload(current)["description"] = "Reworded."
        payload(current)["properties"]["urn"]["description"] = "The school's URN."
        assert check(released, current) == []

    def test_unchanged(self, released, current):
        assert check(released, current) == []


class TestPublishedSchemasTolerateUnknownFields:
    def test_no_published_schema_forbids_unknown_fields(self):
        for key, schema in compatibility.current_schemas().items():
            assert '"additionalProperties": false' not in json.dumps(schema), key

    def test_the_producers_strict_schema_still_forbids_them(self):
        schema = dict(PUBLISHED.items())[("member_joined", 1)]
        strict = contracts.envelope_json_schema("membership", "member_joined", 1, schema, strict=True)
        assert payload(strict)["additionalProperties"] is False
        assert payload(strict)["properties"]["mat"]["additionalProperties"] is False


class TestTheRepository:
    def test_what_the_code_publishes_keeps_every_released_schema(self):
        released = compatibility.released_schemas()
        assert released, "nothing released: run `python -m deploy.compatibility --release`"
        assert compatibility.problems(released, compatibility.current_schemas()) == []

    def test_released_files_are_named_by_service_type_and_version(self):
        released = compatibility.released_schemas()
        for (service, event_type, version), schema in released.items():
            assert schema["$id"] == f"urn:partnership:events:{service}:{event_type}:v{version}"

    def test_check_command_passes(self, capsys):
        assert compatibility.main(["--check"]) == 0
        assert "compatible with the" in capsys.readouterr().out


class TestRelease:
    @pytest.fixture
    def root(self, tmp_path):
        return tmp_path

    def test_release_freezes_what_is_published(self, root):
        written = compatibility.release(root, ["membership"])
        assert root / "services/membership/contracts/released/member_joined.v1.schema.json" in written
        assert compatibility.released_schemas(root, ["membership"]) == compatibility.current_schemas(["membership"])
        assert compatibility.release(root, ["membership"]) == []  # nothing changed

    def test_release_refuses_a_breaking_change(self, root):
        compatibility.release(root, ["membership"])
        path = root / "services/membership/contracts/released/member_joined.v1.schema.json"
        frozen = json.loads(path.read_text())
        payload(frozen)["properties"]["kind"]["enum"].append("college")  # released with a value now gone
        path.write_text(json.dumps(frozen))
        with pytest.raises(ValueError, match="payload.kind: narrowed enum"):
            compatibility.release(root, ["membership"])
        assert json.loads(path.read_text()) == frozen  # nothing written

    def test_a_released_event_no_longer_published_fails_the_check_until_retired(self, root):
        compatibility.release(root, ["membership"])
        gone = root / "services/membership/contracts/released/member_vanished.v1.schema.json"
        gone.write_text(json.dumps(published()))
        released = compatibility.released_schemas(root, ["membership"])
        current = compatibility.current_schemas(["membership"])
        assert compatibility.problems(released, current) == [
            "membership:member_vanished.v1: removed event (released, no longer published; retire it only after "
            "its deprecation period: docs/events.md)"]

    def test_retiring_needs_a_later_released_version(self, root):
        compatibility.release(root, ["membership"])
        with pytest.raises(ValueError, match="no later version of it is published and released"):
            compatibility.release(root, ["membership"], retire=[("membership", "member_joined", 1)])

    def test_retiring_a_version_once_its_successor_is_released(self, root, monkeypatch):
        v2 = published()
        v2["$id"] = "urn:partnership:events:membership:member_joined:v2"
        with_v2 = {**compatibility.current_schemas(["membership"]), ("membership", "member_joined", 2): v2}
        monkeypatch.setattr(compatibility, "current_schemas", lambda services=(): dict(with_v2))
        compatibility.release(root, ["membership"])  # v1 and v2 released side by side
        without_v1 = {k: v for k, v in with_v2.items() if k != ("membership", "member_joined", 1)}
        monkeypatch.setattr(compatibility, "current_schemas", lambda services=(): dict(without_v1))
        with pytest.raises(ValueError, match="member_joined.v1: removed event"):
            compatibility.release(root, ["membership"])
        removed = compatibility.release(root, ["membership"], retire=[("membership", "member_joined", 1)])
        assert removed == [root / "services/membership/contracts/released/member_joined.v1.schema.json"]
        assert set(compatibility.released_schemas(root, ["membership"])) == set(without_v1)
