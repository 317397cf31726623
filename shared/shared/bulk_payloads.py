"""Many event payloads built as `PayloadSchemas.build` builds one, without marshmallow for each.

`build()` dumps a payload with its published schema and validates the dumped form: a
quarter of a millisecond for a subscription event, about 46 s over the 192,000 events of a
national renewal round, twice the round itself. `BulkBuilder.build` returns the same payload
and refuses the same payloads, like this:

- A payload's *shape* is its keys in order and the exact Python type of each value, nested
  dicts and lists included (a list by the distinct shapes of its items, not its length). Its
  *plain form* is the payload with dates and datetimes as ISO text, UUIDs as text, tuples as
  lists and every other value (text, integers, floats, booleans, None) as it is.
- The first payload of each type, version and shape is built in full. If its plain form is
  what the schema dumped, value for value and type for type, the shape is trusted: for the
  fields allowed here, whose dumping depends on a value's type and not on the value (text,
  integers, booleans, floats, ISO dates and datetimes, UUIDs, raw values, nested schemas,
  lists and dicts of them), a payload of that shape dumps to its plain form. If it is not (a
  field renames, rounds or turns an integer into a float), every payload of that shape is
  built in full.
- A later payload of a trusted shape is its plain form, after the checks its shape does not
  settle: every value of a field that has validators (a range, a choice, a pattern) or whose
  loading depends on the value (a date, a float, a UUID) is loaded as `validate()` loads it
  (a UUID field's text is matched against the canonical form instead, and anything else is
  built in full). Keys, required fields, nulls and the types of text, integers and booleans
  are settled by the shape, which passed them once. A value a field accepted before is not
  loaded again (up to `MEMO_LIMIT` values per field). A payload that fails a check is built
  in full, so it is refused with `build()`'s own error.
- A schema with hooks (`pre_load`, `validates`, `validates_schema`, ...) or with a field of
  any other class (Method, Function, Constant, Pluck, a custom field), at any depth, has every
  payload built in full.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Callable, Mapping

from marshmallow import Schema, ValidationError, fields

MEMO_LIMIT = 4096
SHAPE_LIMIT = 10_000

_SCALARS = frozenset((str, int, float, bool, type(None)))
_all_scalar = _SCALARS.issuperset
_DATE_TYPES = {dt.date: dt.date.isoformat, dt.datetime: dt.datetime.isoformat}
# Without validators, loading never refuses a value of the type a trusted shape holds for these.
_SETTLED = (fields.String, fields.Integer)
_LEAVES = (fields.String, fields.Email, fields.Url, fields.Integer, fields.Float, fields.Boolean, fields.Date,
           fields.DateTime, fields.UUID, fields.Raw)
_ISO = (None, "iso", "iso8601")


class _NotPlain(Exception):
    """A value with no plain form here (a Decimal, an enum, an object): its payload is built in full."""


class _Unsupported(Exception):
    """A schema this cannot check value by value: its payloads are built in full."""


def plain(value: Any) -> tuple[Any, Any]:
    """(plain form, shape) of a payload; raises `_NotPlain`. A dict's shape is (keys, value types)
    or, when it holds more than text, numbers, booleans and None, (keys, value types, their shapes)."""
    kind = type(value)
    if kind is dict:
        types = tuple(map(type, value.values()))
        if _all_scalar(types):
            return dict(value), (tuple(value), types)
        out = dict(value)
        inner = []
        for key, item in value.items():
            item_kind = type(item)
            if item_kind in _SCALARS:
                continue
            to_text = _DATE_TYPES.get(item_kind)
            if to_text is not None:
                out[key] = to_text(item)
            else:
                out[key], item_shape = plain(item)
                inner.append(item_shape)
        return out, (tuple(value), types, tuple(inner))
    if kind is list or kind is tuple:
        out, shapes = [], {}
        for item in value:  # records and scalars inline: most lists in payloads hold one or the other
            item_kind = type(item)
            if item_kind is dict:
                types = tuple(map(type, item.values()))
                if _all_scalar(types):
                    out.append(dict(item))
                    shapes[(tuple(item), types)] = None
                    continue
            elif item_kind in _SCALARS:
                out.append(item)
                shapes[item_kind] = None
                continue
            item_plain, item_shape = plain(item)
            out.append(item_plain)
            shapes[item_shape] = None
        return out, (kind, tuple(shapes))
    if kind in _SCALARS:
        return value, kind
    to_text = _DATE_TYPES.get(kind)
    if to_text is not None:
        return to_text(value), kind
    if kind is uuid.UUID:
        return str(value), kind
    raise _NotPlain(kind.__name__)


def same(a: Any, b: Any) -> bool:
    """Equal value for value and type for type (1 is not 1.0 nor True: they dump differently)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


# A UUID's canonical text: `fields.UUID` loads any text matching it (and more, which is built in full).
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _loads(field: fields.Field, memo: set | None) -> Callable[[Any], bool]:
    """A check that loads a value with the field as `validate()` does, and remembers the values it accepted.

    A memo holds values of one type: in a trusted shape a field with a memo (text, a number, a date
    as text, a boolean) holds one type, any other dumping differently (5 as "5", 1 as 1.0, 1 as True),
    so 1 and True never meet in one memo."""
    deserialize = field.deserialize

    def check(value) -> bool:
        try:
            deserialize(value)
        except ValidationError:
            return False
        if memo is not None and len(memo) < MEMO_LIMIT:
            memo.add(value)
        return True
    return check


def _needs_loading(field: fields.Field) -> bool:
    return bool(field.validators or getattr(field, "pre_load", None) or getattr(field, "post_load", None))


def _plan(schema: Schema) -> tuple:
    """The checks a trusted shape leaves for `schema`: ((key, memo, check), ...); `_check_plan` runs them."""
    if getattr(schema, "_hooks", None) is None or any(schema._hooks.values()):
        raise _Unsupported(f"{type(schema).__name__} has hooks")
    checks = []
    for name, field in schema.fields.items():
        entry = _field_check(field)
        if entry is not None:
            checks.append((field.data_key or name, *entry))
    return tuple(checks)


def _field_check(field: fields.Field) -> tuple[set | None, Callable[[Any], bool]] | None:
    """(memo, check) of one field's non-null value on a trusted shape; None: the shape settles it."""
    kind = type(field)
    # what is nested is looked at first, even when the field is loaded whole: it must dump by type too
    if kind is fields.Nested:
        nested = _plan(field.schema)
        if _needs_loading(field):
            return None, _loads(field, None)
        if not nested:
            return None
        if field.many:
            return None, lambda value: all(item is None or _check_plan(nested, item) for item in value)
        return None, lambda value: _check_plan(nested, value)
    if kind is fields.List:
        inner = _field_check(field.inner)
        if _needs_loading(field):
            return None, _loads(field, None)
        if inner is None:
            return None
        memo, check = inner
        if memo is None:
            return None, lambda value: all(item is None or check(item) for item in value)
        return None, lambda value: all(item is None or item in memo or check(item) for item in value)
    if kind is fields.Dict:
        keys = None if field.key_field is None else _field_check(field.key_field)
        values = None if field.value_field is None else _field_check(field.value_field)
        if _needs_loading(field) or keys is not None or values is not None:
            return None, _loads(field, None)
        return None
    if kind not in _LEAVES:
        raise _Unsupported(f"a {kind.__name__} field")
    if isinstance(field, (fields.Date, fields.DateTime)) and field.format not in _ISO:
        raise _Unsupported(f"a {kind.__name__} field formatted {field.format!r}")
    if kind is fields.Raw:
        return (None, _loads(field, None)) if _needs_loading(field) else None
    settled = kind in _SETTLED or (kind is fields.Boolean and True in field.truthy and False in field.falsy)
    if not _needs_loading(field):
        if settled:
            return None
        if kind is fields.UUID:  # a new value almost every time: a pattern, not a memo
            return None, lambda value: type(value) is str and _UUID_TEXT.fullmatch(value) is not None
    memo: set = set()
    return memo, _loads(field, memo)


def _check_plan(plan: tuple, value: Mapping) -> bool:
    for key, memo, check in plan:
        item = value.get(key)
        if item is None:  # absent or null: the shape settled that
            continue
        if memo is not None and item in memo:
            continue
        if not check(item):
            return False
    return True


class BulkBuilder:
    """`build()` for many payloads: the same output, the same refusals, marshmallow once per shape.

    Holds what it learnt (trusted shapes, accepted values) for the life of the `PayloadSchemas`."""

    def __init__(self, schemas: Mapping[tuple[str, int], Schema], build: Callable[[str, int, Any], dict]):
        self._schemas = schemas
        self._build = build
        self._plans: dict[tuple[str, int], tuple | None] = {}
        self._shapes: dict[tuple[str, int, Any], bool] = {}
        self.full_builds = 0  # how many payloads went through `build()` (tests, measurements)

    def build(self, event_type: str, version: int, payload: Any) -> dict[str, Any]:
        key = (event_type, version)
        plan = self._plans.get(key, False)
        if plan is False:
            plan = self._plans[key] = self._plan_of(key)
        if plan is None:
            return self._full(event_type, version, payload)
        try:
            out, shape = plain(payload)
        except _NotPlain:
            return self._full(event_type, version, payload)
        trusted = self._shapes.get((event_type, version, shape))
        if trusted is None:
            built = self._full(event_type, version, payload)
            if len(self._shapes) < SHAPE_LIMIT:
                self._shapes[(event_type, version, shape)] = same(out, built)
            return built
        if trusted and _check_plan(plan, out):
            return out
        return self._full(event_type, version, payload)

    def _plan_of(self, key: tuple[str, int]) -> tuple | None:
        schema = self._schemas.get(key)
        if schema is None:
            return None  # build() says what is missing
        try:
            return _plan(schema)
        except _Unsupported:
            return None

    def _full(self, event_type: str, version: int, payload: Any) -> dict[str, Any]:
        self.full_builds += 1
        return self._build(event_type, version, payload)
