"""`shared.openapi`: a service class's routes as an OpenAPI 3 document, from the route declarations."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate
from openapi_spec_validator import validate as validate_openapi

from shared import auth, openapi
from shared.http import http


class Payment(Schema):
    class Meta:
        unknown = RAISE

    amount_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    reference = fields.String(validate=validate.Regexp(r"\A\w+\Z"))


class Period(Schema):
    year = fields.Integer(required=True)


class Service:
    name = "example"

    @http("GET", "/health", public=True)
    def health(self, request):
        return {}

    @http("POST", "/payers/<string:payer_id>/payments/<int:year>", allow=(auth.FINANCE,), body=Payment,
          idempotent=True, responses={201: "recorded"})
    def pay(self, request, payer_id, year):
        return 201, request.command

    @http("GET", "/reports", allow=(auth.FINANCE,), query=Period, produces="text/csv")
    def report(self, request):
        return ""


def test_the_document_is_valid_openapi_describing_each_declared_route():
    doc = openapi.document(Service)
    validate_openapi(doc)
    assert openapi.documented_routes(doc) == {("GET", "/health"), ("POST", "/payers/{payer_id}/payments/{year}"),
                                              ("GET", "/reports")}
    assert openapi.missing_routes(Service, doc) == []


def test_a_route_declares_its_parameters_body_security_and_every_response():
    doc = openapi.document(Service)
    pay = doc["paths"]["/payers/{payer_id}/payments/{year}"]["post"]
    params = {(p["in"], p["name"]): p for p in pay["parameters"]}
    # an <int:...> value is bounded by what a database integer holds (a bigger one is refused, 400)
    assert params[("path", "year")]["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    assert params[("path", "payer_id")]["schema"]["type"] == "string"
    assert params[("header", "Idempotency-Key")]["schema"]["maxLength"] > 0
    assert pay["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Payment"}
    body = doc["components"]["schemas"]["Payment"]
    assert body["required"] == ["amount_pence"] and body["additionalProperties"] is False
    assert body["properties"]["reference"]["pattern"] == "^\\w+$"  # Python anchors as JSON Schema's
    assert pay["security"] == [{"bearerAuth": []}]
    assert set(pay["responses"]) == {"201", "400", "401", "403", "404", "409", "413", "415", "422", "500"}
    assert pay["responses"]["415"] == {"$ref": "#/components/responses/Refused415"}
    assert doc["components"]["responses"]["Refused400"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Error"}

    report = doc["paths"]["/reports"]["get"]
    assert [(p["in"], p["name"], p["required"]) for p in report["parameters"]] == [("query", "year", True)]
    assert report["responses"]["200"]["content"] == {"text/csv": {"schema": {"type": "string"}}}

    health = doc["paths"]["/health"]["get"]
    assert health["security"] == [] and set(health["responses"]) == {"200", "500"}


class Year(Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))


class WithPathSchema:
    @http("GET", "/calendars/<string:la>/<int:year>", allow=(auth.SCHEDULER,), path=Year)
    def calendar(self, request, la, year):
        return {}


def test_a_declared_path_schema_bounds_its_path_values():
    doc = openapi.document(WithPathSchema)
    validate_openapi(doc)
    params = {p["name"]: p for p in doc["paths"]["/calendars/{la}/{year}"]["get"]["parameters"]}
    assert params["year"]["schema"] == {"type": "integer", "minimum": 2000, "maximum": 2100}
    assert params["year"]["required"] is True and params["la"]["schema"]["type"] == "string"


def test_a_route_missing_from_a_document_is_named():
    doc = openapi.document(Service)
    del doc["paths"]["/reports"]
    assert openapi.missing_routes(Service, doc) == ["GET /reports"]


def test_the_check_fails_for_a_missing_route_or_an_invalid_document(monkeypatch):
    from deploy import openapi as deploy_openapi

    doc = openapi.document(Service)
    assert deploy_openapi.problems_of("example", Service, doc) == []
    del doc["paths"]["/health"]
    assert deploy_openapi.problems_of("example", Service, doc) == [
        "example: route GET /health is missing from its OpenAPI document"]
    doc["paths"]["/reports"]["get"]["responses"] = "none"
    assert any("not a valid OpenAPI 3 document" in p for p in deploy_openapi.problems_of("example", Service, doc))
