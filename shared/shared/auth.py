"""Who is calling, and may they: OAuth 2.0 bearer tokens and route-level authorisation.

Authentication. Every route except those declared `public` (`GET /health`, `GET /ready`) needs
`Authorization: Bearer <JWT>`. The token is verified with PyJWT (no token parsing or cryptography
here): its signature against the issuer's published keys (`AUTH_JWKS_URL`, or the `jwks_uri` of
`AUTH_ISSUER`'s OpenID discovery document), fetched over HTTP by `jwt.PyJWKClient`, cached, and
fetched again when a token names a key id the cache lacks (the issuer rotated its keys; at most
once per `AUTH_JWKS_REFRESH_COOLDOWN_SECONDS`); its algorithm, one of `AUTH_ALGORITHMS` (RS256 and
ES256 by default; `none` and the HMAC family are refused at start, since a public key must never
be taken for a shared secret); its issuer, audience, expiry and not-before (with
`AUTH_LEEWAY_SECONDS` for clock skew). Missing, malformed, expired or otherwise invalid: 401 with
`WWW-Authenticate: Bearer ...` (RFC 6750). A machine client (a finance system, another operator's
tooling) presents a client-credentials token: it is verified the same way and carries its roles in
the same claim.

Nothing is specific to one identity provider: the claims that carry roles and organisations are
settings (`AUTH_ROLES_CLAIM` e.g. `roles` for Entra ID app roles, `realm_access.roles` for
Keycloak; `AUTH_URN_CLAIM`, `AUTH_MAT_CLAIM`, `AUTH_COUNCIL_CLAIM`, `AUTH_CONTACT_CLAIM`), a
dotted name reaching into nested claims.

The development issuer (`DEVELOPMENT_ISSUER`, whose keys `make run` makes and serves locally) is
accepted only with `AUTH_DEVELOPMENT=1`; a production service refuses both (see
`shared.config.check_production_settings`).

`/metrics` is scraped with its own credential, `METRICS_TOKEN` (a bearer token Prometheus reads
from a file), compared in constant time; no user token opens it.

Authorisation. A route declares who may call it (`allow`, roles) and, when it takes the id of
something a school or MAT owns, how to find the owner (`owner`). Trust staff with an allowed role
reach every object; school staff only their own school's (`urn` claim); MAT staff only their MAT's
own objects and those of the schools in their MAT on the date the request is about (`on` or `as_of`
in the query, else today); a council officer only what the route allows council officers. An
object out of reach answers 404 with the same body as one that does not exist; a known caller
without an allowed role gets 403.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import jwt

log = logging.getLogger(__name__)

AUTH_KEY = "AUTH"
#: The issuer of the tokens `partnership-ops dev-token` mints with the key `make run` makes.
DEVELOPMENT_ISSUER = "urn:partnership:development"
DEFAULT_ALGORITHMS = ("RS256", "ES256")
_SAFE_ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

# -- roles -------------------------------------------------------------------------------------
# Trust staff: the partnership's own people (or machine clients acting for it); they reach every
# object of the routes their role allows.
CATALOGUE_MANAGER = "catalogue_manager"
FINANCE = "finance"
SCHEDULER = "scheduler"
OPERATIONS = "operations"
MEMBERSHIP_OFFICER = "membership_officer"
TRUST_STAFF = frozenset({CATALOGUE_MANAGER, FINANCE, SCHEDULER, OPERATIONS, MEMBERSHIP_OFFICER})
# School staff: of the one school named by the token's URN claim.
HEAD_TEACHER = "head_teacher"
BUSINESS_MANAGER = "business_manager"
GOVERNOR = "governor"
SENCO = "senco"
SCHOOL_STAFF_MEMBER = "school_staff"
SCHOOL_STAFF = frozenset({HEAD_TEACHER, BUSINESS_MANAGER, GOVERNOR, SENCO, SCHOOL_STAFF_MEMBER})
# Those of a school's staff who may act for it (book, renew, keep its calendar); whether a person
# may commit its spending is membership's rule, checked by the service on the person's contact id.
SCHOOL_LEADERS = frozenset({HEAD_TEACHER, BUSINESS_MANAGER})
# MAT staff: of the one multi-academy trust named by the token's MAT claim.
MAT_STAFF_MEMBER = "mat_staff"
MAT_FINANCE = "mat_finance"
MAT_STAFF = frozenset({MAT_STAFF_MEMBER, MAT_FINANCE})
# Council officers (of the local authority named by the council claim): read the register and reports.
COUNCIL_OFFICER = "council_officer"
COUNCIL = frozenset({COUNCIL_OFFICER})
ALL_ROLES = TRUST_STAFF | SCHOOL_STAFF | MAT_STAFF | COUNCIL
ANYONE = ALL_ROLES  # any authenticated caller with a known role


class Unauthenticated(Exception):
    """No usable token: answered 401 with a `WWW-Authenticate` challenge."""

    def __init__(self, message: str, error: str = "invalid_token"):
        super().__init__(message)
        self.message = message
        self.error = error  # RFC 6750: invalid_request (none or malformed header) or invalid_token


class Forbidden(Exception):
    """A known caller without a role this route allows: answered 403."""


class OutOfReach(Exception):
    """The object exists but not for this caller: answered 404 exactly as a missing one."""


class AuthMisconfigured(RuntimeError):
    """A service must not start with authentication settings that would let anyone in."""


@dataclass(frozen=True)
class AuthSettings:
    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: int = 30
    jwks_refresh_cooldown_seconds: float = 30.0
    jwks_cache_seconds: float = 300.0
    roles_claim: str = "roles"
    urn_claim: str = "urn"
    mat_claim: str = "mat_id"
    council_claim: str = "la_code"
    contact_claim: str = "contact_id"
    development: bool = False
    metrics_token: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.issuer and self.audience)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "AuthSettings":
        """Settings from a service config's `AUTH` block (`${AUTH_*}` from the environment)."""
        raw = dict(config.get(AUTH_KEY) or {})

        def text(key: str, default: str = "") -> str:
            value = raw.get(key)
            return default if value is None else str(value).strip()

        algorithms = raw.get("algorithms") or ",".join(DEFAULT_ALGORITHMS)
        if isinstance(algorithms, str):
            algorithms = [a.strip() for a in algorithms.split(",") if a.strip()]
        settings = cls(
            issuer=text("issuer"), audience=text("audience"), jwks_url=text("jwks_url"),
            algorithms=tuple(algorithms),
            leeway_seconds=int(text("leeway_seconds", "30") or 30),
            jwks_refresh_cooldown_seconds=float(text("jwks_refresh_cooldown_seconds", "30") or 30),
            jwks_cache_seconds=float(text("jwks_cache_seconds", "300") or 300),
            roles_claim=text("roles_claim", "roles") or "roles", urn_claim=text("urn_claim", "urn") or "urn",
            mat_claim=text("mat_claim", "mat_id") or "mat_id",
            council_claim=text("council_claim", "la_code") or "la_code",
            contact_claim=text("contact_claim", "contact_id") or "contact_id",
            development=text("development", "").lower() in ("1", "true", "yes", "on"),
            metrics_token=_secret(text("metrics_token"), text("metrics_token_file")))
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that would accept forged tokens (raises AuthMisconfigured, naming the setting)."""
        unsafe = [a for a in self.algorithms if a not in _SAFE_ALGORITHMS]
        if unsafe:
            raise AuthMisconfigured(f"AUTH_ALGORITHMS {', '.join(unsafe)} refused: only asymmetric "
                                    f"signatures ({', '.join(sorted(_SAFE_ALGORITHMS))}) are accepted")
        if not self.algorithms:
            raise AuthMisconfigured("AUTH_ALGORITHMS is empty")
        if self.issuer == DEVELOPMENT_ISSUER and not self.development:
            raise AuthMisconfigured(f"AUTH_ISSUER is the development issuer {DEVELOPMENT_ISSUER}: accepted "
                                    "only with AUTH_DEVELOPMENT=1 (never in production)")


def _secret(value: str, path: str) -> str:
    if value:
        return value
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return ""


def _claim(claims: Mapping[str, Any], dotted: str) -> Any:
    value: Any = claims
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Principal:
    """The verified caller: its subject, its roles and the organisations they are held in."""

    subject: str
    roles: frozenset[str] = frozenset()
    urn: str | None = None
    mat_id: str | None = None
    la_code: str | None = None
    contact_id: str | None = None
    client_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def effective_roles(self) -> frozenset[str]:
        """Roles that count: a school role needs a URN, a MAT role a MAT, a council role a council."""
        roles = set(self.roles & TRUST_STAFF)
        if self.urn:
            roles |= self.roles & SCHOOL_STAFF
        if self.mat_id:
            roles |= self.roles & MAT_STAFF
        if self.la_code:
            roles |= self.roles & COUNCIL
        return frozenset(roles)

    def as_log(self) -> dict:
        return {"subject": self.subject, "roles": sorted(self.roles), "urn": self.urn, "mat_id": self.mat_id}


def principal_from_claims(claims: Mapping[str, Any], settings: AuthSettings) -> Principal:
    roles = _claim(claims, settings.roles_claim) or []
    if isinstance(roles, str):
        roles = roles.split()  # a space-separated `scope`-like claim
    contact = _claim(claims, settings.contact_claim)

    def org(name: str) -> str | None:
        value = _claim(claims, name)
        return str(value) if value not in (None, "") else None

    return Principal(subject=str(claims.get("sub") or ""), roles=frozenset(str(r) for r in roles),
                     urn=org(settings.urn_claim), mat_id=org(settings.mat_claim),
                     la_code=org(settings.council_claim),
                     contact_id=str(contact) if contact not in (None, "") else None,
                     client_id=claims.get("azp") or claims.get("client_id"), claims=dict(claims))


def discover_jwks_url(issuer: str, timeout: float = 10.0) -> str:
    """The `jwks_uri` of the issuer's OpenID Connect discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - an https/http issuer
        document = json.load(response)
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise AuthMisconfigured(f"the discovery document at {url} names issuer {document.get('issuer')!r}")
    return document["jwks_uri"]


class TokenVerifier:
    """Verifies bearer tokens against one issuer's published keys (see module docstring)."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None

    def _keys(self) -> jwt.PyJWKClient:
        if self._client is None:
            url = self.settings.jwks_url or discover_jwks_url(self.settings.issuer)
            self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=self.settings.jwks_cache_seconds,
                                           cooldown_duration=self.settings.jwks_refresh_cooldown_seconds,
                                           timeout=10)
        return self._client

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises Unauthenticated saying why not (never the token)."""
        if not self.settings.configured:
            raise Unauthenticated("this service has no token issuer configured (AUTH_ISSUER, AUTH_AUDIENCE)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        if header.get("alg") not in self.settings.algorithms:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted")
        try:
            key = self._keys().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("could not fetch the issuer's keys: %s", exc)
            raise Unauthenticated("the issuer's keys could not be fetched; try again") from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError):
            raise Unauthenticated("the token is signed with a key the issuer does not publish") from None
        try:
            claims = jwt.decode(token, key=key, algorithms=list(self.settings.algorithms),
                                audience=self.settings.audience, issuer=self.settings.issuer,
                                leeway=self.settings.leeway_seconds,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("the token's signature or claims are invalid") from None
        return principal_from_claims(claims, self.settings)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises Unauthenticated otherwise."""
    if not authorization:
        raise Unauthenticated("a bearer token is required", error="")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <token>`", error="invalid_request")
    return token.strip()


def challenge(exc: Unauthenticated, realm: str) -> str:
    """The `WWW-Authenticate` value for a 401 (RFC 6750 section 3)."""
    value = f'Bearer realm="{realm}"'
    if exc.error:
        value += f', error="{exc.error}", error_description="{exc.message}"'
    return value


def metrics_token_matches(settings: AuthSettings, authorization: str | None) -> bool:
    if not settings.metrics_token:
        return False
    try:
        token = bearer_token(authorization)
    except Unauthenticated:
        return False
    return hmac.compare_digest(token.encode(), settings.metrics_token.encode())


# -- route declarations ------------------------------------------------------------------------
Owners = frozenset  # organisation keys: "school:<urn>", "mat:<id>"


def school(urn: str) -> str:
    return f"school:{urn}"


def mat(mat_id: str) -> str:
    return f"mat:{mat_id}"


@dataclass(frozen=True)
class Access:
    """Who may call one route.

    - `public`: no token (health and readiness probes only).
    - `scrape`: the metrics credential, not a user token.
    - `allow`: the roles that may call it (trust roles reach every object).
    - `owner(session, request, **path_values)`: for a route about an object a school or MAT owns,
      the organisation keys that own it (`school:<urn>`, `mat:<id>`); an empty set when no such
      object exists; None when the request names no object to check (the handler refuses it).
    """

    allow: frozenset[str] = frozenset()
    owner: Callable[..., Iterable[str] | None] | None = None
    public: bool = False
    scrape: bool = False

    @classmethod
    def declare(cls, allow=None, owner=None, public: bool = False, scrape: bool = False) -> "Access":
        roles: set[str] = set()
        for item in allow or ():
            roles |= {item} if isinstance(item, str) else set(item)
        unknown = roles - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)} in a route declaration")
        if not (public or scrape or roles):
            raise ValueError("a route must declare who may call it: allow=(roles...), public=True or scrape=True")
        return cls(allow=frozenset(roles), owner=owner, public=public, scrape=scrape)

    def roles_for(self, principal: Principal) -> frozenset[str]:
        return principal.effective_roles() & self.allow


def request_date(request) -> dt.date:
    """The date a request is about: its `on` or `as_of` query value, else the business date today."""
    from shared import business_date

    for key in ("on", "as_of"):
        value = request.args.get(key) if request is not None else None
        if value:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                break
    return business_date.today()


def reaches(principal: Principal, roles: frozenset[str], owners: Iterable[str],
            mat_of: Callable[[str, dt.date], str | None], on: dt.date) -> bool:
    """Whether a caller holding `roles` (already allowed by the route) reaches an object owned by `owners`."""
    if roles & TRUST_STAFF:
        return True
    owners = set(owners)
    if roles & SCHOOL_STAFF and school(principal.urn) in owners:
        return True
    if roles & MAT_STAFF:
        if mat(principal.mat_id) in owners:
            return True
        for key in owners:
            if key.startswith("school:") and mat_of(key.split(":", 1)[1], on) == principal.mat_id:
                return True
    if roles & COUNCIL:
        return True  # a route allows council officers only where the register is theirs to read
    return False


def environment_settings(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The AUTH_* variables set in an environment (for the production check)."""
    return {k: v for k, v in environ.items() if k.startswith("AUTH_") or k.startswith("METRICS_TOKEN")}


# -- owners found from the request itself ------------------------------------------------------
def school_in_path(name: str = "urn") -> Callable[..., set[str]]:
    """The owner of a route about one school: the school its path names (existing or not)."""
    def owner(session, request, **values):
        return {school(values[name])}
    return owner


def mat_in_path(name: str) -> Callable[..., set[str]]:
    def owner(session, request, **values):
        return {mat(values[name])}
    return owner


def school_in_body(name: str = "urn") -> Callable[..., set[str] | None]:
    """The owner of a request that acts for the school its JSON body names; None when the body names
    none (the handler then refuses the body, 400)."""
    def owner(session, request, **values):
        try:
            data = json.loads(request.get_data(cache=True, as_text=True) or "null")
        except ValueError:
            return None
        value = data.get(name) if isinstance(data, Mapping) else None
        return {school(value)} if isinstance(value, str) else None
    return owner


def school_in_query(name: str = "urn") -> Callable[..., set[str] | None]:
    """The owner of a request about the school its query names; None when it names none."""
    def owner(session, request, **values):
        value = request.args.get(name)
        return {school(value)} if value else None
    return owner


def acting_contact(request) -> str:
    """The membership contact id of the person making the request (the token's contact claim): a
    purchase, a renewal, a cancellation or a booking is theirs, never a contact named in the body.
    Raises Forbidden (403) when the token names no person."""
    principal = getattr(request, "principal", None)
    if principal is None or not principal.contact_id:
        raise Forbidden("this is done by a school's contact in person: the token carries no contact id "
                        "(the claim AUTH_CONTACT_CLAIM names)")
    return principal.contact_id
