"""The tests' token issuer: a generated key set served over real HTTP on 127.0.0.1, and tokens.

Every service a test starts (`tests.conftest.Stack`) trusts this issuer (`service_auth_env()`), as a
deployment trusts its identity provider: the services fetch its JWKS over HTTP. It is not the
development issuer, so no service runs with `AUTH_DEVELOPMENT`. `http_json` attaches
`trust_staff()` unless a test passes its own token (or `token=None`, for an anonymous call).
"""
from __future__ import annotations

import secrets
import threading

from partnership_ops.devauth import Issuer, JwksServer
from shared import auth

ISSUER_NAME = "https://login.test.invalid/partnership"
AUDIENCE = "partnership-api"
METRICS_TOKEN = secrets.token_urlsafe(24)

_lock = threading.Lock()
_server: JwksServer | None = None


def server() -> JwksServer:
    """The session's issuer, started on first use (daemon thread; ends with the test process)."""
    global _server
    with _lock:
        if _server is None:
            _server = JwksServer(Issuer(ISSUER_NAME, AUDIENCE)).start()
        return _server


def issuer() -> Issuer:
    return server().issuer


def service_auth_env() -> dict[str, str]:
    return {"AUTH_ISSUER": ISSUER_NAME, "AUTH_AUDIENCE": AUDIENCE, "AUTH_JWKS_URL": server().jwks_url,
            "METRICS_TOKEN": METRICS_TOKEN}


def token(subject: str, roles, **claims) -> str:
    return issuer().token(subject, roles=sorted(roles), **claims)


_TRUST: str | None = None


def trust_staff() -> str:
    """A token of trust staff holding every trust role (the default of the tests' HTTP helpers)."""
    global _TRUST
    if _TRUST is None:
        _TRUST = issuer().token("test-trust-staff", roles=sorted(auth.TRUST_STAFF), lifetime_seconds=24 * 3600)
    return _TRUST


def school_staff(urn: str, role: str = auth.HEAD_TEACHER, contact_id: str | None = None) -> str:
    return token(f"test-{role}-{urn}", [role], urn=urn, contact_id=contact_id)


def contact(urn: str, contact_id: str, role: str = auth.HEAD_TEACHER) -> str:
    """The token of a school's contact in person (purchases, renewals, cancellations and bookings are theirs)."""
    return school_staff(urn, role, contact_id=contact_id)


def mat_staff(mat_id: str, role: str = auth.MAT_STAFF_MEMBER) -> str:
    return token(f"test-{role}-{mat_id}", [role], mat_id=mat_id)


def bearer(value: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"} if value else {}


def metrics_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {METRICS_TOKEN}"}
