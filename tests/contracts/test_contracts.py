"""Event contracts: the generated files, the examples, and every consumer's copy against its producer.

Services never import each other; these tests do, so that a producer dropping
or loosening a field that a consumer relies on fails here rather than at 3am.
"""
from __future__ import annotations

import copy
import datetime as dt
import inspect
import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from marshmallow import EXCLUDE, Schema, fields

import billing.entrypoints.service
import billing.messages.consumed
import catalogue.entrypoints.service
import catalogue.messages.consumed
import membership.entrypoints.service
import scheduling.entrypoints.service
import scheduling.messages.consumed
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from deploy import contracts
from membership.messages.published import MemberJoinedV1
from shared.consumer import ReliableEventHandler
from shared.envelope import Envelope

SERVICE_CLASSES = (
    membership.entrypoints.service.MembershipService,
    catalogue.entrypoints.service.CatalogueService,
    billing.entrypoints.service.BillingService,
    scheduling.entrypoints.service.SchedulingService,
)


def _handlers():
    """Every `@consumes(source, type, Schema)` entrypoint of every service, read off the classes."""
    for service_class in SERVICE_CLASSES:
        for _name, method in inspect.getmembers(service_class, inspect.isfunction):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, ReliableEventHandler):
                    yield service_class, entrypoint


# Every consumer copy, and the producer event it copies: read from the handlers
# themselves, so a new handler is checked against its producer without being listed.
CONSUMERS: dict[type[Schema], tuple[str, str, int]] = {}
for _service_class, _handler in _handlers():
    _schema = _handler.schema if isinstance(_handler.schema, type) else type(_handler.schema)
    CONSUMERS[_schema] = (_handler.source_service, _handler.event_type, _handler.version)
CONSUMED_MODULES = (catalogue.messages.consumed, billing.messages.consumed, scheduling.messages.consumed)

PUBLISHED_EVENTS = [(service, event_type, version, schema, example)
                    for service in contracts.SERVICES
                    for event_type, version, schema, example in contracts.published_events(service)]
EVENT_IDS = [f"{service}:{event_type}.v{version}" for service, event_type, version, _, _ in PUBLISHED_EVENTS]


def format_checker() -> FormatChecker:
    """jsonschema's checker; `date-time` added when the optional rfc3339 validator is not installed."""
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        @checker.checks("date-time", raises=ValueError)
        def is_date_time(value):
            if not isinstance(value, str):
                return True
            if len(value) < 11 or value[10] not in "Tt":
                raise ValueError(f"{value!r} is not an RFC 3339 date-time")
            return dt.datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None
    return checker


def load_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def schema_path(service, event_type, version):
    return contracts.contracts_dir(service) / contracts.schema_filename(event_type, version)


def example_path(service, event_type, version):
    return contracts.contracts_dir(service) / "examples" / contracts.example_filename(event_type, version)


def validator_for(service, event_type, version) -> Draft202012Validator:
    schema = load_json(schema_path(service, event_type, version))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=format_checker())


def producer_schema(service: str, event_type: str, version: int) -> Schema:
    return dict(contracts.published_module(service).PUBLISHED.items())[(event_type, version)]


def producer_example(service: str, event_type: str, version: int) -> dict:
    return contracts.published_module(service).EXAMPLES[(event_type, version)]


def _json_types(field: fields.Field) -> set[str]:
    declared = contracts.converter().field2property(field).get("type")
    if declared is None:
        return set()
    return ({declared} if isinstance(declared, str) else set(declared)) - {"null"}


def _wire_fields(schema: Schema, *, loading: bool) -> dict[str, fields.Field]:
    skip = "dump_only" if loading else "load_only"
    return {field.data_key or name: field for name, field in schema.fields.items() if not getattr(field, skip)}


def _inner(field: fields.Field) -> fields.Field:
    return field.inner if isinstance(field, fields.List) else field


def incompatibilities(consumer: Schema, producer: Schema, path: str = "") -> list[str]:
    """Why `consumer` could fail to read what `producer` writes; empty when it cannot.

    Every field the consumer requires must exist in the producer's schema and be required
    there; a field the producer may send as null must be nullable for the consumer; JSON types
    (and enums) must fit; nested objects and lists are compared the same way, recursively.
    """
    found = []
    produced = _wire_fields(producer, loading=False)
    for wire_name, wanted in _wire_fields(consumer, loading=True).items():
        where = f"{path}{wire_name}"
        given = produced.get(wire_name)
        if given is None:
            if wanted.required:
                found.append(f"{where}: required by the consumer, not in the producer's schema")
            continue
        if wanted.required and not given.required:
            found.append(f"{where}: required by the consumer, optional in the producer's schema")
        if given.allow_none and not wanted.allow_none:
            found.append(f"{where}: the producer may send null, the consumer does not accept it")
        if not _json_types(given) <= _json_types(wanted) and _json_types(wanted):
            found.append(f"{where}: the producer sends {sorted(_json_types(given))}, "
                         f"the consumer reads {sorted(_json_types(wanted))}")
        wanted_enum = contracts.converter().field2property(wanted).get("enum")
        given_enum = contracts.converter().field2property(given).get("enum")
        if wanted_enum is not None and (given_enum is None or not set(given_enum) <= set(wanted_enum)):
            found.append(f"{where}: the producer may send values the consumer's enum refuses")
        if isinstance(wanted, fields.List) != isinstance(given, fields.List):
            found.append(f"{where}: a list on one side only")
            continue
        wanted_inner, given_inner = _inner(wanted), _inner(given)
        if isinstance(wanted_inner, fields.Nested) and isinstance(given_inner, fields.Nested):
            found += incompatibilities(wanted_inner.schema, given_inner.schema,
                                       f"{where}[]." if isinstance(wanted, fields.List) else f"{where}.")
    return found


class TestGeneratedFiles:
    def test_generated_contract_files_are_up_to_date(self):
        assert contracts.problems() == [], "run `python -m deploy.contracts`"
        assert contracts.check()

    def test_check_command_exits_zero_when_up_to_date(self, capsys):
        assert contracts.main(["--check"]) == 0

    def test_check_reports_missing_stale_and_leftover_files(self, tmp_path):
        assert any(p.startswith("missing:") for p in contracts.problems(tmp_path))
        assert not contracts.check(tmp_path)
        contracts.write(tmp_path)
        assert contracts.problems(tmp_path) == []
        schema_file = tmp_path / "services/membership/contracts/member_joined.v1.schema.json"
        schema_file.write_text(schema_file.read_text() + " ", encoding="utf-8")
        leftover = tmp_path / "services/membership/contracts/member_vanished.v1.schema.json"
        leftover.write_text("{}", encoding="utf-8")
        assert sorted(contracts.problems(tmp_path)) == [
            "no longer published: services/membership/contracts/member_vanished.v1.schema.json",
            "out of date: services/membership/contracts/member_joined.v1.schema.json",
        ]
        contracts.write(tmp_path)
        assert contracts.problems(tmp_path) == [] and not leftover.exists()

    def test_every_service_has_a_readme_listing_its_events(self):
        for service in contracts.SERVICES:
            text = (contracts.contracts_dir(service) / "README.md").read_text(encoding="utf-8")
            for event_type, version, schema, _ in contracts.published_events(service):
                assert f"| `{event_type}` | {version} | {contracts.describe(schema)}" in text
            for header in ("x-event-id", "x-event-version", "x-producer", "x-correlation-id", "x-causation-id"):
                assert f"`{header}`" in text
            assert "outbox" in text and "event_id" in text

    def test_payload_schemas_inline_nested_schemas(self):
        for service, event_type, version, _, _ in PUBLISHED_EVENTS:
            assert "$ref" not in schema_path(service, event_type, version).read_text(encoding="utf-8")


@pytest.mark.parametrize(("service", "event_type", "version", "schema", "example"), PUBLISHED_EVENTS, ids=EVENT_IDS)
class TestPublishedExamples:
    def test_example_envelope_validates_against_its_json_schema(self, service, event_type, version, schema, example):
        envelope = load_json(example_path(service, event_type, version))
        errors = [error.message for error in validator_for(service, event_type, version).iter_errors(envelope)]
        assert errors == []

    def test_example_envelope_is_the_example_payload_in_a_well_formed_envelope(self, service, event_type, version,
                                                                                schema, example):
        envelope = load_json(example_path(service, event_type, version))
        assert envelope["payload"] == example
        parsed = Envelope.from_dict(json.dumps(envelope))
        assert (parsed.type, parsed.version, parsed.producer) == (event_type, version, service)

    def test_example_payload_passes_the_producers_own_schema(self, service, event_type, version, schema, example):
        assert schema.validate(example) == {}
        # and it is exactly what the producer would write for the same facts (`build` dumps then validates)
        facts = schema.load(example)
        assert contracts.published_module(service).PUBLISHED.build(event_type, version, facts) == example

    def test_json_schema_refuses_broken_envelopes(self, service, event_type, version, schema, example):
        validator = validator_for(service, event_type, version)
        good = load_json(example_path(service, event_type, version))
        required_field = sorted(schema.fields)[0]
        breakages = {
            "bad event_id": lambda e: e.update(event_id="not-a-uuid"),
            "bad occurred_at": lambda e: e.update(occurred_at="yesterday"),
            "other version": lambda e: e.update(version=version + 1),
            "other type": lambda e: e.update(type="something_else"),
            "other producer": lambda e: e.update(producer="someone_else"),
            "no correlation_id": lambda e: e.pop("correlation_id"),
            "missing payload field": lambda e: e["payload"].pop(required_field),
        }
        for name, breakage in breakages.items():
            broken = copy.deepcopy(good)
            breakage(broken)
            assert not validator.is_valid(broken), name

    def test_published_schema_allows_unknown_fields_the_producers_does_not(self, service, event_type, version,
                                                                             schema, example):
        """Consumers ignore a field added within a version, so the schema they are given allows it; the
        producer's own (strict) schema refuses it, so nothing unknown is sent by accident."""
        strict = Draft202012Validator(contracts.envelope_json_schema(service, event_type, version, schema,
                                                                     strict=True),
                                      format_checker=format_checker())
        good = load_json(example_path(service, event_type, version))
        assert strict.is_valid(good)
        added = copy.deepcopy(good)
        added["payload"]["surprise"] = 1
        added["surprise"] = 1
        assert validator_for(service, event_type, version).is_valid(added)
        assert not strict.is_valid(added)


class TestConsumerCopies:
    def test_every_consumer_copy_is_read_by_a_handler(self):
        declared = {obj for module in CONSUMED_MODULES for name, obj in vars(module).items()
                    if inspect.isclass(obj) and issubclass(obj, Schema) and not name.startswith("_")
                    and obj.__module__ == module.__name__}
        assert declared == set(CONSUMERS)

    @pytest.mark.parametrize("consumer", list(CONSUMERS), ids=lambda c: f"{c.__module__}.{c.__name__}")
    def test_consumer_loads_the_producers_example(self, consumer):
        service, event_type, version = CONSUMERS[consumer]
        assert consumer().validate(producer_example(service, event_type, version)) == {}
        wire = load_json(example_path(service, event_type, version))["payload"]
        assert consumer().validate(wire) == {}

    @pytest.mark.parametrize("consumer", list(CONSUMERS), ids=lambda c: f"{c.__module__}.{c.__name__}")
    def test_producer_guarantees_every_field_the_consumer_requires(self, consumer):
        service, event_type, version = CONSUMERS[consumer]
        assert incompatibilities(consumer(), producer_schema(service, event_type, version)) == []


class _BrokenMat(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    region = fields.String(required=True)


class _NeedsFieldProducerLacks(Schema):
    class Meta:
        unknown = EXCLUDE

    urn = fields.String(required=True)
    favourite_colour = fields.String(required=True)


class _NeedsNestedFieldProducerLacks(Schema):
    class Meta:
        unknown = EXCLUDE

    mat = fields.Nested(_BrokenMat, required=True, allow_none=True)


class _RefusesNullMat(Schema):
    class Meta:
        unknown = EXCLUDE

    mat = fields.Nested(scheduling.messages.consumed._Mat, required=True)


class _ReadsUrnAsNumber(Schema):
    class Meta:
        unknown = EXCLUDE

    urn = fields.Integer(required=True)


class _NameOptionalProducer(MemberJoinedV1):
    name = fields.String(required=False)


class TestTheCheckCanFail:
    """Deliberately broken copies and producers: the compatibility check must catch each one."""

    def test_consumer_requiring_a_field_the_producer_does_not_have(self):
        assert incompatibilities(_NeedsFieldProducerLacks(), MemberJoinedV1()) == [
            "favourite_colour: required by the consumer, not in the producer's schema"]

    def test_consumer_requiring_a_nested_field_the_producer_does_not_have(self):
        assert incompatibilities(_NeedsNestedFieldProducerLacks(), MemberJoinedV1()) == [
            "mat.region: required by the consumer, not in the producer's schema"]

    def test_producer_dropping_a_field_a_consumer_needs(self):
        producer = MemberJoinedV1(exclude=("postcode",))
        assert incompatibilities(scheduling.messages.consumed.MemberJoined(), producer) == [
            "postcode: required by the consumer, not in the producer's schema"]

    def test_producer_making_a_needed_field_optional(self):
        problems = incompatibilities(catalogue.messages.consumed.MemberJoined(), _NameOptionalProducer())
        assert problems == ["name: required by the consumer, optional in the producer's schema"]

    def test_consumer_refusing_null_the_producer_may_send(self):
        assert incompatibilities(_RefusesNullMat(), MemberJoinedV1()) == [
            "mat: the producer may send null, the consumer does not accept it"]

    def test_consumer_reading_a_field_as_another_type(self):
        assert incompatibilities(_ReadsUrnAsNumber(), MemberJoinedV1()) == [
            "urn: the producer sends ['string'], the consumer reads ['integer']"]

    def test_a_broken_copy_also_fails_to_load_the_example(self):
        errors = _NeedsFieldProducerLacks().validate(producer_example("membership", "member_joined", 1))
        assert "favourite_colour" in errors
