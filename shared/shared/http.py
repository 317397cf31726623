"""JSON over HTTP for nameko services, with errors a client can act on.

`@http(method, url)` handlers return a dict or list (200), or `(status, body)`.
Failures never surface as a 500 with a traceback:
- a body that is not JSON, or fields that fail the marshmallow schema: 400 with
  `{"error": "invalid_request", "fields": {field: [rule, ...]}}`;
- `NotFound` 404, `Conflict` 409, `RuleViolation` 422, each with a sentence; a domain's own refusal
  (any exception declaring its kind, see `Refusal`) answers the same way in every service, and a
  request that lost a race for a unique key 409;
- a body over the route's size limit (`MAX_BODY_BYTES`, 1 MiB unless configured; bulk imports
  `MAX_IMPORT_BODY_BYTES`, 128 MiB): 413, checked from `Content-Length` before reading and
  while reading a body sent without one; a body that is not declared `application/json`
  where JSON is expected: 415; both name the field (`_body`, `Content-Type`) and the rule;
- routes declared `idempotent=True` honour an `Idempotency-Key` header (`shared.idempotency`):
  a retry gets the first response, the same key with another request 422, a key still in
  progress 409;
- an unknown route or method: 404/405 as JSON;
- anything unexpected: 500 `{"error": "internal_error", "correlation_id": ...}`,
  the traceback goes to the log only.
Every response carries `X-Correlation-ID` (taken from the request or new).

A route declares what it reads: `body=SomeSchema` (a JSON object), `query=SomeSchema` (the query
string) and `path=SomeSchema` (bounds on path values beyond their converter). The entrypoint loads
them after authorisation and before the worker runs, so a bad request never reaches the handler (400
naming each field, 415, 413 as above); the handler reads the loaded values as `request.command` and
`request.query_args`, and gets the loaded path values as its arguments. An `<int:...>` path value
no schema bounds is refused above `MAX_PATH_INTEGER` (what a database integer column holds). The same declarations describe the route in the
service's OpenAPI document (`shared.openapi`).

Before any worker runs, `_authorise` applies the route's declared access (`shared.auth`): 401 with
`WWW-Authenticate` without a valid bearer token, 403 for a caller without an allowed role, 404 (the
same body as for a missing object) for an object out of the caller's reach. The verified caller is
`request.principal` in the handler.
"""
from __future__ import annotations

import abc
import json
import logging
import re
import time
import uuid
from functools import partial
from typing import Any, Mapping

from eventlet.event import Event
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import IntegrityError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from shared import audit, auth, idempotency

log = logging.getLogger(__name__)


class _ExpectedErrorsWithoutTraceback(logging.Filter):
    """nameko logs every *expected* worker exception (a 400, a 404) with its traceback;
    keep the one-line warning, drop the traceback that says nothing about a client's typo."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("(expected) error handling worker"):
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_ExpectedErrorsWithoutTraceback())

CORRELATION_HEADER = "X-Correlation-ID"


class HttpError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(HttpError):
    status = 404
    code = "not_found"


class Conflict(HttpError):
    status = 409
    code = "conflict"


class RuleViolation(HttpError):
    status = 422
    code = "rule_violated"


class NotPermitted(HttpError):
    """The caller is who they say and may use the route, but a rule of the domain keeps this object from them."""

    status = 403
    code = "forbidden"


class PayloadTooLarge(HttpError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HttpError):
    status = 415
    code = "unsupported_media_type"


class Refusal(abc.ABC):
    """A refusal by a service's domain or use cases, answered the same way in all four services.

    Domains import nothing of `shared/` (the import contract `domains-pure`), so an exception declares its
    kind by name, as a class attribute `refusal` (a key of `REFUSALS`), with a `message` (else its text) and
    optionally the `field` it is about and `details`; any exception class that declares one is a `Refusal`
    (`isinstance` answers from the attribute). This is the one mapping from refusals to answers.
    """

    @classmethod
    def __subclasshook__(cls, candidate):
        if cls is Refusal and any("refusal" in vars(klass) for klass in candidate.__mro__):
            return True
        return NotImplemented


#: Each kind of refusal, and the error it answers with (status and code, see the classes above).
REFUSALS: dict[str, type[HttpError]] = {"not_found": NotFound, "conflict": Conflict, "rule_broken": RuleViolation,
                                        "forbidden": NotPermitted}


def is_lost_race(exc: Exception) -> bool:
    """A unique key refused a row: two requests raced to write the same thing and this one lost (its whole
    transaction rolled back). Any other integrity error is a fault, not a race."""
    if not isinstance(exc, IntegrityError):
        return False
    original = getattr(exc, "orig", None)
    return getattr(original, "pgcode", None) == "23505" or "UNIQUE constraint failed" in str(original)


LOST_RACE = ("a concurrent request changed the same record first; nothing was written, read the current state "
             "and retry")


def answer_for(refusal: Exception) -> HttpError:
    """The HTTP error for a domain refusal (see `Refusal`): its status by kind, its sentence, and the field."""
    kind = getattr(refusal, "refusal", None)
    if kind not in REFUSALS:
        raise TypeError(f"{type(refusal).__name__}.refusal is {kind!r}; one of {', '.join(REFUSALS)} is expected")
    details = dict(getattr(refusal, "details", None) or {})
    if getattr(refusal, "field", None):
        details["field"] = refusal.field
    return REFUSALS[kind](getattr(refusal, "message", None) or str(refusal), **details)


# A werkzeug rule's placeholders: `<name>`, `<int:name>`, `<string(length=2):name>`.
PATH_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
MAX_PATH_INTEGER = 2**31 - 1  # PostgreSQL's integer; SQLite's is wider


def path_integers(url: str) -> list[str]:
    """The names of a rule's `<int:...>` path values."""
    return [m["name"] for m in PATH_PLACEHOLDER.finditer(url) if m["converter"] == "int"]


# Body size limits by setting name; a route picks one with `body_limit=` (default MAX_BODY_BYTES).
BODY_LIMIT_DEFAULTS = {"MAX_BODY_BYTES": 1024 * 1024, "MAX_IMPORT_BODY_BYTES": 128 * 1024 * 1024}


def _too_large(limit: int, setting: str, size: int | None = None) -> PayloadTooLarge:
    told = f"{size} bytes" if size is not None else "more"
    return PayloadTooLarge(f"the request body is {told}; this route takes at most {limit} bytes ({setting})",
                           fields={"_body": [f"at most {limit} bytes"]})


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_response(status: int, body: Any, correlation_id: str | None = None) -> Response:
    headers = {CORRELATION_HEADER: correlation_id} if correlation_id else None
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json", headers=headers)


UNSTORABLE_TEXT = "must not contain the NUL character (\\u0000) or an unpaired surrogate"


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): valid JSON, not text a database stores
        return False
    return True


def unstorable_text(value: Any, name: str = "") -> dict[str, list[str]]:
    """Each field (dotted path) of a decoded JSON value, query or path whose text no database stores:
    PostgreSQL refuses NUL in text and UTF-8 has no unpaired surrogate, and either was a 500."""
    found: dict[str, list[str]] = {}
    if isinstance(value, str):
        if not _storable(value):
            found[name or "_body"] = [UNSTORABLE_TEXT]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            label = f"{name}.{key}" if name else str(key)
            if isinstance(key, str) and not _storable(key):
                found[name or "_body"] = [UNSTORABLE_TEXT]
            found.update(unstorable_text(item, label))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.update(unstorable_text(item, f"{name}.{index}" if name else str(index)))
    return found


def load_body(request: Request, schema: Schema) -> Any:
    """Parse and validate a JSON body (a dict, or the command a `shared.commands.CommandSchema` loads into); raises `ValidationError` naming each bad field, and
    `UnsupportedMediaType` (415) for a body not declared as JSON."""
    raw = request.get_data(cache=True, as_text=True)
    if raw.strip() and not _is_json(request.mimetype):
        raise UnsupportedMediaType(
            f"this route takes a JSON body, not {request.mimetype or 'a body without a Content-Type'}",
            fields={"Content-Type": ["must be application/json"]})
    try:
        data = json.loads(raw, parse_constant=_refuse_constant) if raw.strip() else None
    except json.JSONDecodeError as exc:
        raise ValidationError({"_body": [f"not valid JSON: {exc.msg} at position {exc.pos}"]}) from None
    except ValueError as exc:  # NaN/Infinity, or an integer longer than Python parses
        raise ValidationError({"_body": [f"not valid JSON: {exc}"]}) from None
    if not isinstance(data, Mapping):
        raise ValidationError({"_body": ["the request body must be a JSON object"]})
    unstorable = unstorable_text(data)
    if unstorable:
        raise ValidationError(unstorable)
    return schema.load(data)


def load_query(request: Request, schema: Schema) -> Any:
    return schema.load(request.args.to_dict())


def refuse_unstorable_request_text(request: Request) -> None:
    """ValidationError naming each path value or query argument with text no database stores, and the
    JSON body's fields, when the body is JSON (anything else is left to the route's own reading)."""
    found = unstorable_text(dict(getattr(request, "path_values", None) or {}))
    for key, value in request.args.items(multi=True):
        found.update(unstorable_text({key: value}))
    if _is_json(request.mimetype or ""):
        try:
            found.update(unstorable_text(json.loads(request.get_data(cache=True, as_text=True) or "null")))
        except ValueError:
            pass  # not JSON: load_body says so
    if found:
        raise ValidationError(found)


class JsonWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            # eventlet's server de-chunks the body and ends the stream at the last chunk, but does not say
            # so; without this werkzeug reads a chunked body as empty. With it, werkzeug enforces the body
            # limit while reading (see JsonHttp._refuse_oversized).
            environ["wsgi.input_terminated"] = True
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = json_response(exc.code or 500, {"error": (exc.name or "error").lower().replace(" ", "_"),
                                                        "message": exc.description})
        return response(environ, start_response)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)


class JsonHttp(HttpRequestHandler):
    """An HTTP entrypoint that speaks JSON and maps errors (see module docstring)."""

    server = JsonWebServer()

    def __init__(self, method: str, url: str, *, allow=None, owner=None, public: bool = False,
                 scrape: bool = False, idempotent: bool = False, body_limit: str = "MAX_BODY_BYTES",
                 body: type[Schema] | Schema | None = None, query: type[Schema] | Schema | None = None,
                 path: type[Schema] | Schema | None = None,
                 responses: Mapping[int, str] | None = None, produces: str = "application/json",
                 consumes: str | None = None, **kwargs):
        kwargs.setdefault("expected_exceptions", (ValidationError, HttpError, Refusal, IntegrityError,
                                                     auth.Forbidden))
        self.idempotent = idempotent
        self.body_limit = body_limit
        self.body_schema = body() if isinstance(body, type) else body
        self.query_schema = query() if isinstance(query, type) else query
        self.path_schema = path() if isinstance(path, type) else path
        # The success statuses a route answers when not just 200, and what each means (the OpenAPI document),
        # e.g. {201: "created"}; a refusal status listed here is described with the shared error body.
        self.responses = dict(responses or {})
        # Media types for the document: what a success answers with, and a body that is not a JSON object.
        self.produces = produces
        self.consumes = consumes
        super().__init__(method, url, **kwargs)
        self.access = auth.Access.declare(allow=allow, owner=owner, public=public, scrape=scrape)

    def setup(self):
        super().setup()
        # Storage is set up beside this entrypoint (nameko sets extensions up concurrently): check its declaration.
        if self.idempotent and getattr(self._storage(), "idempotency_keys", None) is None:
            raise RuntimeError(f"{self.method} {self.url} is declared idempotent but the service's Storage "
                               "has no idempotency_keys table (shared.idempotency)")

    def handle_request(self, request):
        request.shallow = False
        correlation_id = request.headers.get(CORRELATION_HEADER) or str(uuid.uuid4())
        started = time.perf_counter()
        response = self._refuse_oversized(request, correlation_id) or self._handle_once(request, correlation_id)
        self._audit(request, response, correlation_id)
        log.info("%s %s %s %.1f ms", request.method, request.path, response.status_code,
                 (time.perf_counter() - started) * 1000, extra={"correlation_id": correlation_id})
        return response

    def _handle(self, request, correlation_id: str):
        try:
            if not getattr(request, "authorised", False):
                self._authorise(request)
            self._load_declared(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            done = Event()
            self.container.spawn_worker(self, args, kwargs, context_data={"correlation_id": correlation_id},
                                        handle_result=partial(self.handle_result, done))
            result = done.wait()
            return self._response(result, correlation_id)
        except Exception as exc:  # noqa: BLE001 - mapped to a JSON error below
            return self._error(exc, correlation_id, request)

    def _load_declared(self, request) -> None:
        """Load the route's declared path values, query and body, in that order (as handlers that read
        them did): `request.path_values`, `request.query_args` and `request.command`; raises
        ValidationError/UnsupportedMediaType."""
        refuse_unstorable_request_text(request)
        values = getattr(request, "path_values", None) or {}
        declared = set(self.path_schema.fields) if self.path_schema is not None else set()
        too_big = {name: [f"at most {MAX_PATH_INTEGER}"] for name in path_integers(self.url)
                   if name not in declared and values.get(name, 0) > MAX_PATH_INTEGER}
        if too_big:
            raise ValidationError(too_big)
        if self.path_schema is not None:
            loaded = self.path_schema.load({name: values[name] for name in declared if name in values})
            request.path_values = {**values, **loaded}
        request.query_args = load_query(request, self.query_schema) if self.query_schema is not None else None
        request.command = load_body(request, self.body_schema) if self.body_schema is not None else None

    # -- authentication and authorisation (before the worker is spawned) -----------------------------
    def _authentication(self):
        from shared.service import Authentication  # the container's settings and key cache

        found = next((d for d in self.container.dependencies if isinstance(d, Authentication)), None)
        if found is None:
            raise RuntimeError(f"{self.container.service_name} has no Authentication dependency")
        return found

    def _authorise(self, request) -> None:
        """Raise Unauthenticated (401), Forbidden (403) or OutOfReach (404) unless the route's declared
        access lets this request through; sets `request.principal` (None on public and scrape routes)."""
        request.principal = None
        access = self.access
        if access.public:
            return
        authentication = self._authentication()
        if access.scrape:
            if not auth.metrics_token_matches(authentication.settings, request.headers.get("Authorization")):
                raise auth.Unauthenticated("the metrics scrape credential (METRICS_TOKEN) is required")
            return
        principal = authentication.verifier.verify(auth.bearer_token(request.headers.get("Authorization")))
        request.principal = principal
        roles = access.roles_for(principal)
        if not roles:
            raise auth.Forbidden(f"{self.method.upper()} {self.url} needs one of the roles "
                                 f"{', '.join(sorted(access.allow))}")
        if access.owner is None or roles & auth.TRUST_STAFF:
            return
        refuse_unstorable_request_text(request)  # the owner is looked up by these values
        with authentication.reader() as session:
            owners = access.owner(session, request, **request.path_values)
            if owners is None:
                return
            if not auth.reaches(principal, roles, owners, lambda urn, on: authentication.mat_of(session, urn, on),
                                auth.request_date(request)):
                raise auth.OutOfReach()

    def _audit(self, request, response, correlation_id: str) -> None:
        """Append a state-changing request, or a refusal of access, to the service's audit trail."""
        refused_access = bool(getattr(request, "refused_access", False))
        if self.access.public or self.access.scrape or not audit.should_record(request.method, response.status_code,
                                                                               refused_access):
            return
        try:
            authentication = self._authentication()
        except RuntimeError:
            return
        # In its own green thread, after the answer: on SQLite a job's long transaction (a billing run)
        # holds the one writer, and the answer (a 202) must not wait for it.
        self.container.spawn_managed_thread(partial(
            authentication.record, principal=getattr(request, "principal", None), method=request.method,
            route=self.url, path_values=getattr(request, "path_values", None) or {},
            status=response.status_code, correlation_id=correlation_id), identifier="audit")

    def _refusal(self, exc: Exception, request, correlation_id: str) -> Response:
        request.refused_access = True
        if isinstance(exc, auth.Unauthenticated):
            response = json_response(401, {"error": "unauthenticated", "message": exc.message}, correlation_id)
            response.headers["WWW-Authenticate"] = auth.challenge(exc, self.container.service_name)
            return response
        if isinstance(exc, auth.Forbidden):
            return json_response(403, {"error": "forbidden", "message": str(exc)}, correlation_id)
        # Out of reach: the very body a missing object gets from this check (the path's values, no more).
        values = getattr(request, "path_values", None) or {}
        named = ", ".join(f"{k} {v}" for k, v in values.items())
        body = {"error": "not_found", "message": f"nothing found for {named or 'this request'}"}
        if values:
            body["field"] = list(values)[-1]
        return json_response(404, body, correlation_id)

    # --- input limits --------------------------------------------------------------------------------------

    def _max_body_bytes(self) -> int:
        return int(self.container.config.get(self.body_limit) or BODY_LIMIT_DEFAULTS[self.body_limit])

    def _refuse_oversized(self, request, correlation_id: str) -> Response | None:
        """413 for a body over the limit: a declared `Content-Length` is refused before anything is read;
        a body sent without one (chunked) is read here, in full only up to the limit, so a handler's
        `get_data()` later finds it cached."""
        limit = self._max_body_bytes()
        if request.content_length is not None and request.content_length > limit:
            return self._error(_too_large(limit, self.body_limit, request.content_length), correlation_id)
        if request.content_length is None and request.method in ("POST", "PUT", "PATCH"):
            # werkzeug stops a stream at `max_content_length` without a word: read one byte more than the
            # limit, so a body that goes past it is seen (and refused) rather than silently cut short.
            request.max_content_length = limit + 1
            try:
                over = len(request.get_data(cache=True)) > limit
            except RequestEntityTooLarge:
                over = True
            if over:
                return self._error(_too_large(limit, self.body_limit), correlation_id)
        request.max_content_length = limit
        return None

    # --- Idempotency-Key -----------------------------------------------------------------------------------

    def _storage(self):
        from shared.storage import Storage  # storage imports the relay and the database; http stays light

        return next((d for d in self.container.dependencies if isinstance(d, Storage)), None)

    def _handle_once(self, request, correlation_id: str) -> Response:
        """Run the request; for an idempotent route with an `Idempotency-Key`, at most once per key."""
        key = request.headers.get(idempotency.HEADER) if self.idempotent else None
        if key is None:
            return self._handle(request, correlation_id)
        if not 1 <= len(key) <= idempotency.MAX_KEY_LENGTH or not key.isprintable():
            return self._error(ValidationError({idempotency.HEADER: [
                f"1 to {idempotency.MAX_KEY_LENGTH} printable characters"]}), correlation_id)
        # The caller is authorised before a stored answer is replayed, and the key is the caller's own:
        # another caller's request with the same key is a different request (422), never a replay.
        try:
            self._authorise(request)
            request.authorised = True
        except Exception as exc:  # noqa: BLE001 - a refusal, mapped like any other
            return self._error(exc, correlation_id, request)
        subject = getattr(request.principal, "subject", None) or ""
        keys: idempotency.IdempotencyKeys = self._storage().idempotency
        fingerprint = idempotency.fingerprint(request.method, f"{request.path}\n{subject}", request.query_string,
                                              request.get_data(cache=True))
        claim = keys.claim(key, fingerprint, f"{request.method} {self.url}")
        if isinstance(claim, idempotency.Replay):
            replayed = Response(claim.body, status=claim.status, content_type=claim.content_type)
            replayed.headers[idempotency.REPLAYED_HEADER] = "true"
            replayed.headers[CORRELATION_HEADER] = correlation_id
            return replayed
        if isinstance(claim, idempotency.Mismatch):
            return self._error(RuleViolation(
                f"this Idempotency-Key was first used for another request ({claim.route} with another body); "
                "use a new key for a new request", fields={idempotency.HEADER: ["one key, one request"]}),
                correlation_id)
        if isinstance(claim, idempotency.InProgress):
            return self._error(Conflict(
                "a request with this Idempotency-Key is still in progress; retry it shortly",
                fields={idempotency.HEADER: ["in progress"]}), correlation_id)
        response = None
        try:
            response = self._handle(request, correlation_id)
        finally:
            if response is not None and 200 <= response.status_code < 300:
                keys.complete(key, response.status_code, response.content_type, response.get_data(as_text=True))
            else:  # a refusal records nothing: the key may be used again
                keys.release(key)
        return response

    def _response(self, result, correlation_id):
        if isinstance(result, Response):
            result.headers[CORRELATION_HEADER] = correlation_id
            return result
        status, body = (result if isinstance(result, tuple) else (200, result))
        return json_response(status, body, correlation_id)

    def _error(self, exc: Exception, correlation_id: str, request=None) -> Response:
        if isinstance(exc, (auth.Unauthenticated, auth.Forbidden, auth.OutOfReach)):
            return self._refusal(exc, request, correlation_id)
        if isinstance(exc, ValidationError):
            messages = exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
            return json_response(400, {"error": "invalid_request",
                                       "message": "some fields are invalid; see `fields`",
                                       "fields": messages}, correlation_id)
        if isinstance(exc, Refusal):
            exc = answer_for(exc)
        elif is_lost_race(exc):
            exc = Conflict(LOST_RACE)
        if isinstance(exc, HttpError):
            return json_response(exc.status, {"error": exc.code, "message": exc.message, **exc.details},
                                 correlation_id)
        if isinstance(exc, HTTPException):
            return json_response(exc.code or 400, {"error": "bad_request", "message": exc.description},
                                 correlation_id)
        log.error("unexpected error in %s (correlation %s)", self.method_name, correlation_id,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return json_response(500, {"error": "internal_error",
                                   "message": "the request failed unexpectedly; the service log has the details under this correlation id",
                                   "correlation_id": correlation_id}, correlation_id)


http = JsonHttp.decorator
