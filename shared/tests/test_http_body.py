"""`load_body`: JSON only where JSON is expected (415), and no number JSON does not have."""
from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError, fields
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.http import UNSTORABLE_TEXT, UnsupportedMediaType, load_body, refuse_unstorable_request_text


class Anything(Schema):
    value = fields.Raw()


def request(body: bytes, content_type: str | None = "application/json") -> Request:
    headers = {"Content-Type": content_type} if content_type else {}
    return Request(EnvironBuilder(method="POST", data=body, headers=headers).get_environ())


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv", None])
def test_a_body_not_declared_as_json_is_refused_415_naming_the_header(content_type):
    with pytest.raises(UnsupportedMediaType) as refused:
        load_body(request(b'{"value": 1}', content_type), Anything())
    assert refused.value.status == 415
    assert refused.value.details == {"fields": {"Content-Type": ["must be application/json"]}}


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/merge-patch+json"])
def test_json_content_types_are_read(content_type):
    assert load_body(request(b'{"value": 1}', content_type), Anything()) == {"value": 1}


@pytest.mark.parametrize("body", [b'{"value": NaN}', b'{"value": Infinity}', b'{"value": -Infinity}',
                                  b'{"value": 1' + b"0" * 5000 + b"}"])
def test_numbers_json_does_not_have_are_a_400_on_the_body_never_a_500(body):
    with pytest.raises(ValidationError) as refused:
        load_body(request(body), Anything())
    assert list(refused.value.messages) == ["_body"]
    assert refused.value.messages["_body"][0].startswith("not valid JSON")


@pytest.mark.parametrize("body, field", [
    (b'{"value": "a\\u0000b"}', "value"),
    (b'{"value": ["ok", "\\ud800"]}', "value.1"),
    (b'{"value": {"name": "x\\u0000"}}', "value.name"),
])
def test_text_no_database_stores_is_a_400_naming_the_field(body, field):
    """NUL (PostgreSQL refuses it in text) and unpaired surrogates (not UTF-8) were 500s the fuzzer found."""
    with pytest.raises(ValidationError) as refused:
        load_body(request(body), Anything())
    assert refused.value.messages == {field: [UNSTORABLE_TEXT]}


def test_path_values_and_query_arguments_are_checked_as_well():
    req = Request(EnvironBuilder(method="GET", path="/x", query_string="code=a%00b&ok=fine").get_environ())
    req.path_values = {"urn": "\ud800"}
    with pytest.raises(ValidationError) as refused:
        refuse_unstorable_request_text(req)
    assert refused.value.messages == {"urn": [UNSTORABLE_TEXT], "code": [UNSTORABLE_TEXT]}
    fine = Request(EnvironBuilder(method="GET", path="/x", query_string="code=Ab%C3%A9").get_environ())
    fine.path_values = {"urn": "100001"}
    refuse_unstorable_request_text(fine)
