"""shared.envelope: the one envelope every event travels in, and the published payload registry."""
import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.envelope import CONTENT_TYPE, Envelope, PayloadSchemas, amqp_headers, amqp_properties

OCCURRED_AT = dt.datetime(2026, 4, 1, 9, 30, tzinfo=dt.timezone.utc)
ENVELOPE_FIELDS = ("event_id", "type", "version", "occurred_at", "producer", "operator", "correlation_id",
                   "causation_id", "payload")


def envelope(**overrides) -> Envelope:
    arguments = dict(type="member_joined", payload={"urn": "110394"}, producer="membership",
                     operator="bucks-learning-trust", occurred_at=OCCURRED_AT)
    arguments.update(overrides)
    return Envelope.new(**arguments)


def wire(**overrides) -> dict:
    data = envelope().to_dict()
    data.update(overrides)
    return data


def rejected(data) -> dict:
    with pytest.raises(ValidationError) as caught:
        Envelope.from_dict(data)
    return caught.value.messages


class TestNew:
    def test_each_event_gets_a_fresh_uuid(self):
        first, second = envelope(), envelope()
        assert first.event_id != second.event_id
        assert str(uuid.UUID(first.event_id)) == first.event_id

    def test_a_new_event_starts_its_own_correlation(self):
        event = envelope()
        assert event.correlation_id == event.event_id and event.causation_id is None

    def test_correlation_and_causation_are_kept_when_given(self):
        event = envelope(correlation_id="req-123", causation_id="evt-456")
        assert (event.correlation_id, event.causation_id) == ("req-123", "evt-456")

    def test_version_defaults_to_1(self):
        assert envelope().version == 1 and envelope(version=3).version == 3

    def test_occurred_at_is_converted_to_utc(self):
        london_summer = dt.timezone(dt.timedelta(hours=1))
        event = envelope(occurred_at=dt.datetime(2026, 4, 1, 10, 30, tzinfo=london_summer))
        assert event.occurred_at == OCCURRED_AT and event.occurred_at.utcoffset() == dt.timedelta(0)

    def test_occurred_at_defaults_to_now_in_utc(self):
        before = dt.datetime.now(dt.timezone.utc)
        event = envelope(occurred_at=None)
        assert before <= event.occurred_at <= dt.datetime.now(dt.timezone.utc)
        assert event.occurred_at.tzinfo is not None

    def test_payload_is_copied(self):
        payload = {"urn": "110394"}
        event = envelope(payload=payload)
        payload["urn"] = "999999"
        assert event.payload == {"urn": "110394"}


class TestToDict:
    def test_has_exactly_the_envelope_fields(self):
        assert tuple(envelope().to_dict()) == ENVELOPE_FIELDS

    def test_occurred_at_is_iso_8601_utc_with_z(self):
        assert envelope().to_dict()["occurred_at"] == "2026-04-01T09:30:00Z"

    def test_to_json_is_compact_sorted_json_of_to_dict(self):
        event = envelope()
        assert json.loads(event.to_json()) == event.to_dict()
        assert event.to_json() == json.dumps(event.to_dict(), separators=(",", ":"), sort_keys=True)


class TestRoundTrip:
    def test_from_dict_of_to_dict_is_the_same_envelope(self):
        event = envelope(correlation_id="req-1", causation_id=str(uuid.uuid4()), version=2)
        assert Envelope.from_dict(event.to_dict()) == event

    @pytest.mark.parametrize("encode", [lambda e: e.to_json(), lambda e: e.to_json().encode("utf-8"),
                                        lambda e: bytearray(e.to_json(), "utf-8")])
    def test_from_json_text_and_bytes(self, encode):
        event = envelope()
        assert Envelope.from_dict(encode(event)) == event

    def test_unknown_envelope_fields_are_ignored(self):
        assert Envelope.from_dict(wire(extra="ignored")).type == "member_joined"

    def test_a_naive_occurred_at_is_read_as_utc(self):
        assert Envelope.from_dict(wire(occurred_at="2026-04-01T09:30:00")).occurred_at == OCCURRED_AT

    def test_an_offset_occurred_at_is_converted_to_utc(self):
        parsed = Envelope.from_dict(wire(occurred_at="2026-04-01T10:30:00+01:00"))
        assert parsed.occurred_at == OCCURRED_AT and parsed.occurred_at.utcoffset() == dt.timedelta(0)

    @given(event_type=st.from_regex(r"\A[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,3}\Z"),
           version=st.integers(min_value=1, max_value=1000),
           payload=st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10) | st.none(),
                                   max_size=5),
           causation=st.none() | st.uuids().map(str),
           seconds=st.integers(min_value=0, max_value=4_000_000_000))
    def test_round_trip_property(self, event_type, version, payload, causation, seconds):
        occurred = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        event = envelope(type=event_type, version=version, payload=payload, causation_id=causation,
                         occurred_at=occurred)
        assert Envelope.from_dict(event.to_json()) == event


class TestAmqpProperties:
    def test_message_id_is_the_event_id(self):
        event = envelope()
        assert event.amqp_properties()["message_id"] == event.event_id

    def test_typed_persistent_json(self):
        properties = envelope().amqp_properties()
        assert properties["type"] == "member_joined"
        assert properties["content_type"] == CONTENT_TYPE == "application/json"
        assert properties["content_encoding"] == "utf-8"
        assert properties["delivery_mode"] == 2
        assert properties["app_id"] == "membership"

    def test_correlation_id_is_a_property(self):
        assert envelope(correlation_id="req-1").amqp_properties()["correlation_id"] == "req-1"

    def test_headers_carry_every_envelope_fact_but_the_payload(self):
        event = envelope(version=2, correlation_id="req-1", causation_id="evt-0")
        headers = event.amqp_properties()["application_headers"]
        assert {k: v for k, v in headers.items() if k.startswith("x-")} == {
            "x-event-id": event.event_id,
            "x-event-type": "member_joined",
            "x-event-version": 2,
            "x-producer": "membership",
            "x-operator": "bucks-learning-trust",
            "x-correlation-id": "req-1",
            "x-causation-id": "evt-0",
            "x-occurred-at": "2026-04-01T09:30:00Z",
        }

    def test_the_same_facts_as_cloudevents_attributes_in_the_amqp_bindings_header_form(self):
        event = envelope(version=2, correlation_id="req-1", causation_id="evt-0", aggregate="school:100000",
                         sequence=7)
        headers = event.amqp_properties()["application_headers"]
        assert {k: v for k, v in headers.items() if k.startswith("cloudEvents:")} == {
            "cloudEvents:specversion": "1.0",
            "cloudEvents:id": event.event_id,
            "cloudEvents:source": "/operators/bucks-learning-trust/services/membership",
            "cloudEvents:type": "uk.org.partnership.membership.member_joined.v2",
            "cloudEvents:time": "2026-04-01T09:30:00Z",
            "cloudEvents:subject": "school:100000",
            "cloudEvents:correlationid": "req-1",
            "cloudEvents:causationid": "evt-0",
            "cloudEvents:operator": "bucks-learning-trust",
            "cloudEvents:sequence": 7,
            "cloudEvents:eventversion": 2,
        }
        # datacontenttype is the AMQP content type, as the binding maps it
        assert event.amqp_properties()["content_type"] == "application/json"

    def test_cloudevents_attributes_with_no_value_are_left_out(self):
        headers = envelope().amqp_properties()["application_headers"]
        for absent in ("causationid", "subject", "sequence"):
            assert f"cloudEvents:{absent}" not in headers

    def test_routing_key_is_type_and_version(self):
        assert envelope(version=2).routing_key == "member_joined.v2"
        assert envelope().routing_key == "member_joined.v1"

    def test_no_causation_is_an_empty_header(self):
        assert envelope().amqp_properties()["application_headers"]["x-causation-id"] == ""

    def test_module_functions_work_on_the_wire_dict(self):
        event = envelope()
        assert amqp_properties(event.to_dict()) == event.amqp_properties()
        assert amqp_headers(event.to_dict()) == event.amqp_properties()["application_headers"]


class TestFromDictRejects:
    @pytest.mark.parametrize("body", ["{not json", b"\x00\x01", "", "{'single': 'quotes'}"])
    def test_non_json(self, body):
        messages = rejected(body)
        assert "_body" in messages

    @pytest.mark.parametrize("body", ["[1, 2]", "42", '"text"', [1, 2], None])
    def test_json_that_is_not_an_object(self, body):
        assert "_body" in rejected(body)

    @pytest.mark.parametrize("field", ENVELOPE_FIELDS)
    def test_each_missing_field_is_named(self, field):
        data = wire()
        del data[field]
        assert field in rejected(data)

    def test_every_missing_field_is_named_at_once(self):
        assert set(rejected({})) == set(ENVELOPE_FIELDS)

    @pytest.mark.parametrize("event_type", ["MemberJoined", "member-joined", "member joined", "1member", "_member",
                                            "member__joined", "member_", ""])
    def test_type_not_snake_case(self, event_type):
        assert "type" in rejected(wire(type=event_type))

    @pytest.mark.parametrize("version", [0, -1, "1", 1.5, None])
    def test_bad_version(self, version):
        assert "version" in rejected(wire(version=version))

    @pytest.mark.parametrize(("field", "value"), [
        ("event_id", "not-a-uuid"), ("occurred_at", "yesterday"), ("producer", ""), ("operator", ""),
        ("correlation_id", ""), ("payload", [1, 2]), ("payload", None),
    ])
    def test_bad_values_are_named(self, field, value):
        assert field in rejected(wire(**{field: value}))

    def test_null_causation_is_fine(self):
        assert Envelope.from_dict(wire(causation_id=None)).causation_id is None


class _Joined(Schema):
    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    joined_on = fields.Date(required=True)


class TestPayloadSchemas:
    SCHEMAS = PayloadSchemas({("member_joined", 1): _Joined()})

    def test_build_dumps_and_returns_the_wire_payload(self):
        payload = self.SCHEMAS.build("member_joined", 1, {"urn": "110394", "number_on_roll": 172,
                                                          "joined_on": dt.date(2026, 4, 1)})
        assert payload == {"urn": "110394", "number_on_roll": 172, "joined_on": "2026-04-01"}

    def test_membership_and_items(self):
        assert ("member_joined", 1) in self.SCHEMAS and ("member_joined", 2) not in self.SCHEMAS
        assert [key for key, _ in self.SCHEMAS.items()] == [("member_joined", 1)]

    @pytest.mark.parametrize(("event_type", "version"), [("member_left", 1), ("member_joined", 2)])
    def test_unknown_type_or_version_is_refused(self, event_type, version):
        with pytest.raises(LookupError, match=f"{event_type} v{version}"):
            self.SCHEMAS.build(event_type, version, {"urn": "110394", "number_on_roll": 1,
                                                     "joined_on": dt.date(2026, 4, 1)})

    @pytest.mark.parametrize(("payload", "bad_field"), [
        ({"urn": "12345", "number_on_roll": 172, "joined_on": dt.date(2026, 4, 1)}, "urn"),
        ({"urn": "110394", "number_on_roll": -1, "joined_on": dt.date(2026, 4, 1)}, "number_on_roll"),
        ({"urn": "110394", "joined_on": dt.date(2026, 4, 1)}, "number_on_roll"),
    ])
    def test_invalid_payload_is_refused_under_payload(self, payload, bad_field):
        with pytest.raises(ValidationError) as refused:
            self.SCHEMAS.build("member_joined", 1, payload)
        assert set(refused.value.messages) == {"payload"}
        assert bad_field in refused.value.messages["payload"]

    def test_an_empty_registry_refuses_everything(self):
        with pytest.raises(LookupError):
            PayloadSchemas({}).build("member_joined", 1, {})


class _Step(Schema):
    class Meta:
        unknown = RAISE

    label = fields.String(required=True)
    amount_pence = fields.String(required=True, validate=validate.Regexp(r"^-?\d+$"))


class _Trust(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True)
    name = fields.String(required=True)


class _Sold(Schema):
    """Every kind of field the bulk builder checks value by value, and some it settles by shape."""

    class Meta:
        unknown = RAISE

    id = fields.UUID(required=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    years = fields.Integer(required=True, strict=True, validate=validate.OneOf((1, 2, 3)))
    starts = fields.Date(required=True)
    share = fields.Float(required=True, allow_none=True)
    steps = fields.List(fields.Nested(_Step), required=True)
    mat = fields.Nested(_Trust, required=True, allow_none=True)
    po_number = fields.String(required=True, allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(max=3)), required=True)
    active = fields.Boolean(required=True)
    extra = fields.Dict(keys=fields.String(validate=validate.OneOf(("a", "b"))), values=fields.Integer())


class _Hooked(_Sold):
    @validates_schema
    def years_fit(self, data, **kwargs):
        if data["years"] == 3 and data["active"]:
            raise ValidationError("no three-year active", "years")


def _sold(**overrides) -> dict:
    payload = {"id": str(uuid.uuid4()), "urn": "110394", "years": 1, "starts": dt.date(2026, 4, 1), "share": 0.5,
               "steps": [{"label": "base", "amount_pence": "150000"}], "mat": None, "po_number": "PO-1",
               "tags": ["x"], "active": True}
    payload.update(overrides)
    return payload


def _outcome(build, event_type, payload):
    try:
        return "built", build(event_type, 1, payload)
    except ValidationError as exc:
        return "refused", exc.messages
    except LookupError as exc:
        return "unknown", str(exc)


_UUID_TEXT = st.uuids().map(str)
_FIELDS = tuple(_Sold().fields)
# Valid values of one type per field, keys in one order: payloads of one shape, which take the fast path.
_SAME_SHAPE = st.fixed_dictionaries({
    "id": _UUID_TEXT, "urn": st.from_regex(r"\d{6}", fullmatch=True), "years": st.integers(1, 3),
    "starts": st.dates(), "share": st.floats(allow_nan=False, allow_infinity=False),
    "steps": st.lists(st.fixed_dictionaries({"label": st.text(max_size=3),
                                             "amount_pence": st.from_regex(r"-?\d{1,6}", fullmatch=True)}),
                      min_size=1, max_size=3),
    "mat": st.none(), "po_number": st.text(max_size=3), "tags": st.lists(st.text(max_size=3), min_size=1, max_size=3),
    "active": st.booleans(), "extra": st.fixed_dictionaries({"a": st.integers()}),
}).map(lambda payload: {key: payload[key] for key in _FIELDS})
# A value of the same type that the schema refuses (so the shape stays the same).
_REFUSED_SAME_TYPE = {"id": "0E2F3013-AA95-4C43-9859-5F40F38CA0C6", "urn": "12345", "years": 4,
                      "share": float("nan"), "steps": [{"label": "x", "amount_pence": "1.5"}],
                      "tags": ["long tag"], "extra": {"c": 1}}
# Anything: other types, nulls, missing and unknown keys.
_ANY_TYPES = st.fixed_dictionaries({
    "id": st.one_of(_UUID_TEXT, st.uuids(), st.uuids().map(lambda u: str(u).upper()),
                    st.sampled_from(["", "not-a-uuid", "123"])),
    "urn": st.one_of(st.from_regex(r"\d{6}", fullmatch=True), st.sampled_from(["12345", "1103941", "abcdef"])),
    "years": st.sampled_from([1, 2, 3, 4, 0, True, 2.0, "2"]),
    "starts": st.one_of(st.dates(), st.datetimes(), st.just("2026-04-01")),
    "share": st.one_of(st.none(), st.floats(), st.integers(-5, 5)),
    "steps": st.lists(st.fixed_dictionaries({"label": st.text(max_size=3), "amount_pence": st.one_of(
        st.from_regex(r"-?\d{1,6}", fullmatch=True), st.text(max_size=3), st.integers())}), max_size=3),
    "mat": st.one_of(st.none(), st.fixed_dictionaries({"id": st.text(max_size=3), "name": st.text(max_size=3)}),
                     st.just({"id": "TR1"}), st.just({"id": 1, "name": "One"})),
    "po_number": st.one_of(st.none(), st.text(max_size=3)),
    "tags": st.lists(st.one_of(st.text(max_size=5), st.none()), max_size=3),
    "active": st.one_of(st.booleans(), st.sampled_from([1, 0, "yes", None])),
    "extra": st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(), st.text(max_size=2)),
                             max_size=2),
}).flatmap(lambda payload: st.sampled_from([
    payload, {k: v for k, v in payload.items() if k != "extra"}, {k: v for k, v in payload.items() if k != "urn"},
    {**payload, "unknown": 1}]))
_BULK_SCHEMAS = PayloadSchemas({("sold", 1): _Sold(), ("hooked", 1): _Hooked()})  # learns across examples


class TestBuildInBulk:
    """`build_in_bulk` returns what `build` returns and refuses what it refuses, payload for payload."""

    @given(st.lists(_SAME_SHAPE, min_size=1, max_size=30),
           st.lists(st.tuples(st.integers(0, 29), st.sampled_from(sorted(_REFUSED_SAME_TYPE))), max_size=4),
           st.lists(st.tuples(st.integers(0, 29), st.sampled_from(["sold", "hooked", "sold_v2"]), _ANY_TYPES),
                    max_size=6))
    def test_the_same_output_and_the_same_refusals_as_build(self, same_shape, refused, others):
        """Mostly payloads of one shape, some with a refused value of the same type, among payloads of any
        shape, of a schema with hooks, and of a type not published."""
        batch = [("sold", payload) for payload in same_shape]
        for at, field in refused:
            batch[at % len(batch)] = ("sold", {**batch[at % len(batch)][1], field: _REFUSED_SAME_TYPE[field]})
        for at, event_type, payload in others:
            batch.insert(at % (len(batch) + 1), (event_type, payload))
        for event_type, payload in batch:
            expected = _outcome(_BULK_SCHEMAS.build, event_type, payload)
            got = _outcome(_BULK_SCHEMAS.build_in_bulk, event_type, payload)
            assert got == expected
            if got[0] == "built":
                assert json.dumps(got[1], sort_keys=True) == json.dumps(expected[1], sort_keys=True)
                assert [type(v) for v in got[1].values()] == [type(expected[1][k]) for k in got[1]]

    def test_marshmallow_runs_once_per_shape_and_for_anything_a_check_refuses(self):
        schemas = PayloadSchemas({("sold", 1): _Sold()})
        payloads = [_sold(urn=f"{110000 + n}", years=1 + n % 3) for n in range(500)]
        built = [schemas.build_in_bulk("sold", 1, p) for p in payloads]
        assert built == [schemas.build("sold", 1, p) for p in payloads]
        assert schemas._bulk.full_builds == 1
        with_trust = _sold(mat={"id": "TR1", "name": "Trust One"})  # a new shape: built in full
        assert schemas.build_in_bulk("sold", 1, with_trust)["mat"] == {"id": "TR1", "name": "Trust One"}
        assert schemas._bulk.full_builds == 2
        for bad, field in [(_sold(years=4), "years"), (_sold(urn="12345"), "urn"), (_sold(id="not-a-uuid"), "id"),
                           (_sold(steps=[{"label": "x", "amount_pence": "1.5"}]), "steps"),
                           (_sold(tags=["long tag"]), "tags"), (_sold(share=float("nan")), "share")]:
            with pytest.raises(ValidationError) as refused:
                schemas.build_in_bulk("sold", 1, bad)
            assert field in refused.value.messages["payload"]
        assert schemas._bulk.full_builds == 8

    def test_a_shape_whose_dump_differs_is_always_built_in_full(self):
        schemas = PayloadSchemas({("sold", 1): _Sold()})
        payloads = [_sold(share=n) for n in range(1, 4)]  # an int in a Float field dumps as a float
        assert [schemas.build_in_bulk("sold", 1, p)["share"] for p in payloads] == [1.0, 2.0, 3.0]
        assert schemas._bulk.full_builds == 3

    def test_a_schema_with_hooks_is_always_built_in_full(self):
        schemas = PayloadSchemas({("hooked", 1): _Hooked()})
        assert schemas.build_in_bulk("hooked", 1, _sold(years=3, active=False))["years"] == 3
        with pytest.raises(ValidationError):
            schemas.build_in_bulk("hooked", 1, _sold(years=3, active=True))
        assert schemas._bulk.full_builds == 2


class TestPlainEnvelopesSkipMarshmallow:
    """`Envelope.from_dict` reads the plain shape every producer writes without marshmallow: it must give
    exactly what the schema gives, and leave everything else (and every refusal) to the schema."""

    @staticmethod
    def _both(data):
        from shared.envelope import _ENVELOPE_SCHEMA, _plainly_valid

        loaded = _ENVELOPE_SCHEMA.load(data)
        slow = {**loaded, "event_id": str(loaded["event_id"]),
                "occurred_at": loaded["occurred_at"].astimezone(dt.timezone.utc)}
        slow.setdefault("causation_id", None)
        return _plainly_valid(data), slow

    @pytest.mark.parametrize("when", ["2026-11-29T17:26:43.034320Z", "2026-11-29T17:26:43Z",
                                      "2026-11-29T17:26:43.5+01:00", "2026-03-29T01:30:00-05:30"])
    @pytest.mark.parametrize("ordering", [{}, {"aggregate": "school:100000", "sequence": 7},
                                          {"aggregate": None, "sequence": None}])
    def test_the_same_envelope_as_the_schema_gives(self, when, ordering):
        data = {"event_id": "0b7f4e2c-6a43-4f7e-9a55-2f3f0c1d9e11", "type": "member_joined", "version": 2,
                "occurred_at": when, "producer": "membership", "operator": "Bucks", "correlation_id": "c-1",
                "causation_id": None, "payload": {"urn": "100000"}, "extra": "ignored", **ordering}
        fast, slow = self._both(data)
        assert fast == slow

    @pytest.mark.parametrize("change", [
        {"event_id": "0B7F4E2C-6A43-4F7E-9A55-2F3F0C1D9E11"}, {"event_id": "not-a-uuid"}, {"type": "MemberJoined"},
        {"type": "member_joined\n"}, {"version": True}, {"version": 0}, {"version": "1"},
        {"occurred_at": "2026-11-29T17:26:43"}, {"occurred_at": "2026-13-29T17:26:43Z"}, {"occurred_at": "2026-11-29"},
        {"producer": ""}, {"operator": None}, {"correlation_id": 5}, {"payload": []}, {"aggregate": ""},
        {"aggregate": "x" * 201}, {"sequence": 0}, {"sequence": True}, {"causation_id": 3}])
    def test_anything_else_goes_to_the_schema(self, change):
        from shared.envelope import _plainly_valid

        data = {"event_id": "0b7f4e2c-6a43-4f7e-9a55-2f3f0c1d9e11", "type": "member_joined", "version": 1,
                "occurred_at": "2026-11-29T17:26:43Z", "producer": "membership", "operator": "Bucks",
                "correlation_id": "c-1", "causation_id": None, "payload": {}, **change}
        assert _plainly_valid(data) is None
        missing = dict(data)
        del missing["causation_id"]
        assert _plainly_valid(missing) is None  # required by the schema, even as null
