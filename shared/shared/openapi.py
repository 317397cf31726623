"""A service's HTTP contract as an OpenAPI 3 document, read from its route declarations.

`document(ServiceClass)` walks the class's `@http` entrypoints (`shared.http.JsonHttp`) and describes
each route from what it declares, so the document is the contract the service enforces:
- the path, werkzeug converters as path parameters (`<int:id>` an integer up to `MAX_PATH_INTEGER`),
  or a `path=` schema's fields;
- the declared access: the bearer scheme (or the metrics scrape credential, or none on a public
  route), and then 401, 403 and 404 (a missing object, or one out of the caller's reach);
- `body=` and `query=` schemas, through apispec's MarshmallowPlugin (the very schemas that load
  the request), and then 400 naming fields; a body route also 413 and 415;
- `idempotent=True`: the `Idempotency-Key` header, and 409 (in progress) and 422 (reused);
- `responses=` (the success statuses, when not just 200) and `produces=`/`consumes=` media types;
- every refusal has the one error body of `shared.http` (`Error`); any route may answer 409 or 422
  (a domain rule) and 500 (with a correlation id).
"""
from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any, Iterable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from shared import idempotency
from shared.http import MAX_PATH_INTEGER, PATH_PLACEHOLDER, JsonHttp

OPENAPI_VERSION = "3.0.3"
_CONVERTER = PATH_PLACEHOLDER
_CONVERTED = {"int": {"type": "integer", "minimum": 0, "maximum": MAX_PATH_INTEGER}, "float": {"type": "number"}, "uuid": {"type": "string", "format": "uuid"}}

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every refusal and failure: `error` a stable code, `message` a sentence; a field-level "
                   "refusal names each field and its rules in `fields`, a 500 its `correlation_id`.",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "example": "invalid_request"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": True,
                   "description": "field name (or `_body`, `Content-Type`, `Idempotency-Key`) -> its rules"},
        "field": {"type": "string"},
        "correlation_id": {"type": "string"},
    },
    "additionalProperties": True,
}

_REFUSALS = {
    400: "the request is invalid: `fields` names each field and its rule",
    401: "no valid bearer token (see `WWW-Authenticate`)",
    403: "the caller has none of the roles this route allows",
    404: "nothing found (also for an object out of the caller's reach)",
    409: "a conflict with the current state (or a request with this Idempotency-Key still in progress)",
    413: "the body is over this route's size limit",
    415: "the body is not declared as the media type this route takes",
    422: "a domain rule refuses the request (or the Idempotency-Key was used for another request)",
    500: "an unexpected failure; the log has it under `correlation_id`",
}


def entrypoints(service_class: type) -> list[JsonHttp]:
    """The class's HTTP entrypoints, sorted by url then method (one per route)."""
    found: dict[tuple[str, str], JsonHttp] = {}
    for _name, method in inspect.getmembers(service_class, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, JsonHttp):
                found[(entrypoint.url, entrypoint.method.upper())] = entrypoint
    return [found[key] for key in sorted(found)]


def openapi_path(url: str) -> tuple[str, list[dict[str, Any]]]:
    """`/a/<int:year>` -> (`/a/{year}`, [its path parameter])."""
    parameters = []
    for match in _CONVERTER.finditer(url):
        schema = dict(_CONVERTED.get(match["converter"] or "string", {"type": "string"}))
        if schema == {"type": "string"} and (match["converter"] or "string") == "string":
            schema["pattern"] = "^[^/]+$"  # werkzeug's default converter matches one path segment
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _CONVERTER.sub(lambda m: "{" + m["name"] + "}", url), parameters


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _success(entrypoint: JsonHttp, status: int, description: str) -> dict[str, Any]:
    if status >= 400:
        return _error(description)
    if entrypoint.produces == "application/json":
        return {"description": description, "content": {"application/json": {"schema": {}}}}
    return {"description": description, "content": {entrypoint.produces: {"schema": {"type": "string"}}}}


def operation(service_class: type, entrypoint: JsonHttp) -> dict[str, Any]:
    """The OpenAPI operation of one route (schemas as marshmallow classes, resolved by the plugin)."""
    _path, parameters = openapi_path(entrypoint.url)
    if entrypoint.path_schema is not None:  # declared bounds replace the converter's
        declared = set(entrypoint.path_schema.fields)
        parameters = [p for p in parameters if p["name"] not in declared]
        parameters.append({"in": "path", "schema": type(entrypoint.path_schema)})
    access = entrypoint.access
    method = entrypoint.method.upper()
    handler = next((f for f in vars(service_class).values() if entrypoint in getattr(f, ENTRYPOINT_EXTENSIONS_ATTR, ())),
                   None) or _inherited_handler(service_class, entrypoint)
    doc = inspect.getdoc(handler) if handler is not None else None
    op: dict[str, Any] = {"operationId": handler.__name__ if handler else entrypoint.url, "parameters": list(parameters)}
    if doc:
        op["description"] = doc
    if entrypoint.query_schema is not None:
        op["parameters"].append({"in": "query", "schema": type(entrypoint.query_schema)})
    if entrypoint.idempotent:
        op["parameters"].append({"name": idempotency.HEADER, "in": "header", "required": False,
                                 "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH,
                                            "pattern": "^[ -~]+$"},
                                 "description": "a retry with the same key gets the first answer"})
    if entrypoint.body_schema is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": type(entrypoint.body_schema)}}}
    elif entrypoint.consumes:
        op["requestBody"] = {"required": True, "content": {entrypoint.consumes: {"schema": {"type": "string"}}}}
    responses: dict[str, Any] = {}
    for status, description in (entrypoint.responses or {200: "done"}).items():
        responses[str(status)] = _success(entrypoint, status, description)
    refusals: set[int] = {500}
    if access.public:
        op["security"] = []
    else:
        op["security"] = [{"metricsToken": []}] if access.scrape else [{"bearerAuth": []}]
        if not access.scrape:
            # The roles a token must hold one of (403 otherwise); `x-owner`: and the object must be in reach.
            op["x-roles"] = sorted(access.allow)
            if access.owner is not None:
                op["x-owner"] = "school and MAT staff reach only their own school's or MAT's objects (404 otherwise)"
        refusals |= {401}
        if not access.scrape:
            refusals |= {403, 404, 409, 422}
    if len(op["parameters"]) or entrypoint.query_schema is not None or entrypoint.idempotent:
        refusals |= {400, 404}
    if method in ("POST", "PUT", "PATCH"):
        refusals |= {400, 413}
        if entrypoint.body_schema is not None or entrypoint.consumes:
            refusals |= {415}
    for status in sorted(refusals):
        responses.setdefault(str(status), f"Refused{status}")  # a reference to components/responses
    op["responses"] = responses
    return op


def _inherited_handler(service_class: type, entrypoint: JsonHttp):
    for _name, method in inspect.getmembers(service_class, inspect.isfunction):
        if entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            return method
    return None


def document(service_class: type, *, title: str | None = None, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3 document of a service class's HTTP routes, as a JSON-ready dict."""
    name = getattr(service_class, "name", service_class.__name__)
    spec = APISpec(title=title or f"{name} service", version=version, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()],
                   info={"description": inspect.getdoc(service_class) or ""})
    spec.components.schema("Error", ERROR_SCHEMA)
    for status, description in _REFUSALS.items():
        spec.components.response(f"Refused{status}", _error(description))
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                                   "description": "a JWT from the partnership's identity provider"})
    spec.components.security_scheme("metricsToken", {"type": "http", "scheme": "bearer",
                                                     "description": "the metrics scrape credential (METRICS_TOKEN)"})
    paths: dict[str, dict[str, Any]] = {}
    for entrypoint in entrypoints(service_class):
        path, _ = openapi_path(entrypoint.url)
        paths.setdefault(path, {})[entrypoint.method.lower()] = operation(service_class, entrypoint)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return _json_ready(spec.to_dict())


def _json_ready(node: Any) -> Any:
    """The document as JSON states it: Python's `\\A`/`\\Z` anchors as the `^`/`$` of JSON Schema's
    (ECMA-262) patterns, the same strings matched since no pattern is multi-line; a Decimal bound or
    default as the JSON number it is (a bound in a schema, never an amount of money)."""
    if isinstance(node, dict):
        return {key: (value.replace("\\A", "^").replace("\\Z", "$") if key == "pattern" and isinstance(value, str)
                      else _json_ready(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_ready(item) for item in node]
    if isinstance(node, Decimal):
        return int(node) if node == node.to_integral_value() else float(node)
    return node


_DOCUMENTS: dict[type, dict[str, Any]] = {}


def cached_document(service_class: type) -> dict[str, Any]:
    """`document(service_class)`, built once per process (the routes never change while it runs)."""
    if service_class not in _DOCUMENTS:
        _DOCUMENTS[service_class] = document(service_class)
    return _DOCUMENTS[service_class]


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, openapi path) of every operation in a document."""
    return {(method.upper(), path) for path, item in doc.get("paths", {}).items() for method in item
            if method in ("get", "put", "post", "delete", "patch", "head", "options")}


def missing_routes(service_class: type, doc: dict[str, Any]) -> list[str]:
    """Routes of the service class the document does not describe ("METHOD path")."""
    have = documented_routes(doc)
    wanted: Iterable[tuple[str, str]] = ((e.method.upper(), openapi_path(e.url)[0]) for e in entrypoints(service_class))
    return sorted(f"{method} {path}" for method, path in wanted if (method, path) not in have)
