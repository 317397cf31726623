"""One mapping of domain refusals to answers (`shared.http.Refusal`), the same in every service.

Each service's domain and use cases declare the kind of a refusal by name; these tests hold the table
and check the services' own exceptions are read by it (a service whose refusal lost its kind would
answer 500)."""
from __future__ import annotations

import pytest

from shared.http import Conflict, NotFound, NotPermitted, Refusal, RuleViolation, answer_for


class RuleBroken(Exception):
    refusal = "rule_broken"

    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


class Clash(RuleBroken):
    refusal = "conflict"


class Refused(Exception):
    refusal = "rule_broken"

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


def test_a_declared_kind_makes_an_exception_a_refusal_and_its_subclasses_too():
    assert isinstance(RuleBroken("urn", "x"), Refusal)
    assert isinstance(Clash("urn", "x"), Refusal)
    assert not isinstance(ValueError("x"), Refusal)


@pytest.mark.parametrize("exc, error_class, status, code", [
    (RuleBroken("urn", "a URN is 6 digits"), RuleViolation, 422, "rule_violated"),
    (Clash("offering_code", "an SLA covers it"), Conflict, 409, "conflict"),
])
def test_each_kind_answers_its_status_with_the_sentence_and_the_field(exc, error_class, status, code):
    answer = answer_for(exc)
    assert type(answer) is error_class and answer.status == status and answer.code == code
    assert answer.message == exc.message
    assert answer.details == {"field": exc.field}


def test_details_are_carried_and_the_text_is_the_message_when_there_is_no_message():
    answer = answer_for(Refused("the diary clashes", field="date", clashes=["meeting 3"]))
    assert (answer.status, answer.message, answer.details) == (422, "the diary clashes",
                                                               {"field": "date", "clashes": ["meeting 3"]})


def test_an_unknown_kind_is_a_programming_error_named_in_the_exception():
    class Odd(Exception):
        refusal = "teapot"

    with pytest.raises(TypeError, match="Odd.refusal is 'teapot'"):
        answer_for(Odd("x"))


def test_not_permitted_is_a_403():
    assert (NotPermitted.status, NotPermitted.code) == (403, "forbidden")
