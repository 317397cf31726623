"""Bearer-token verification against an issuer whose keys are served over real HTTP (127.0.0.1).

The issuer (`partnership_ops.devauth`) publishes a generated key set at `/jwks.json` and an OpenID
discovery document; `shared.auth.TokenVerifier` fetches them with PyJWT's `PyJWKClient`.
"""
from __future__ import annotations

import datetime as dt
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from partnership_ops.devauth import Issuer, JwksServer, SigningKey
from shared import auth
from shared.auth import AuthMisconfigured, AuthSettings, TokenVerifier, Unauthenticated

ISSUER = "https://login.example.invalid/tenant"
AUDIENCE = "partnership-api"


@pytest.fixture
def jwks():
    server = JwksServer(Issuer(ISSUER, AUDIENCE)).start()
    yield server
    server.stop()


def settings_for(server: JwksServer, **overrides) -> AuthSettings:
    values = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": server.jwks_url,
              "jwks_refresh_cooldown_seconds": 0.0, "leeway_seconds": 0, **overrides}
    return AuthSettings(**values)


def test_a_valid_token_gives_its_subject_roles_and_organisation(jwks):
    token = jwks.issuer.token("alice", roles=["head_teacher"], urn="100000", contact_id="C-1")
    principal = TokenVerifier(settings_for(jwks)).verify(token)
    assert (principal.subject, principal.roles, principal.urn, principal.contact_id) == (
        "alice", frozenset({"head_teacher"}), "100000", "C-1")
    assert principal.effective_roles() == {"head_teacher"}


def test_keys_are_fetched_once_and_cached(jwks):
    verifier = TokenVerifier(settings_for(jwks, jwks_refresh_cooldown_seconds=30.0))
    for n in range(3):
        verifier.verify(jwks.issuer.token(f"user-{n}", roles=["finance"]))
    assert jwks.requests == 1


def test_a_rotated_key_is_fetched_when_a_token_names_it(jwks):
    verifier = TokenVerifier(settings_for(jwks))
    verifier.verify(jwks.issuer.token("before", roles=["finance"]))
    new_key = jwks.issuer.rotate()
    principal = verifier.verify(jwks.issuer.token("after", roles=["finance"], key=new_key))
    assert principal.subject == "after"
    assert jwks.requests == 2


def test_a_rotated_key_waits_for_the_refresh_cooldown(jwks):
    """An unknown key id refetches at most once per cooldown, so forged key ids cannot hammer the issuer."""
    verifier = TokenVerifier(settings_for(jwks, jwks_refresh_cooldown_seconds=3600.0))
    verifier.verify(jwks.issuer.token("before", roles=["finance"]))
    new_key = jwks.issuer.rotate()
    with pytest.raises(Unauthenticated, match="key the issuer does not publish"):
        verifier.verify(jwks.issuer.token("after", roles=["finance"], key=new_key))
    assert jwks.requests == 1


def test_an_expired_token_is_refused(jwks):
    token = jwks.issuer.token("alice", roles=["finance"], issued_at=time.time() - 7200, lifetime_seconds=3600)
    with pytest.raises(Unauthenticated, match="expired"):
        TokenVerifier(settings_for(jwks)).verify(token)


def test_a_token_not_valid_yet_is_refused(jwks):
    token = jwks.issuer.token("alice", roles=["finance"], nbf=int(time.time()) + 3600)
    with pytest.raises(Unauthenticated, match="not valid yet"):
        TokenVerifier(settings_for(jwks)).verify(token)


@pytest.mark.parametrize("claims, reason", [
    ({"aud": "another-api"}, "another audience"),
    ({"iss": "https://evil.example.invalid"}, "another issuer"),
])
def test_a_token_for_another_audience_or_from_another_issuer_is_refused(jwks, claims, reason):
    with pytest.raises(Unauthenticated, match=reason):
        TokenVerifier(settings_for(jwks)).verify(jwks.issuer.token("alice", roles=["finance"], **claims))


def test_a_token_signed_by_an_unpublished_key_is_refused(jwks):
    stranger = SigningKey.generate(kid=jwks.issuer.keys[0].kid)  # same key id, other key
    with pytest.raises(Unauthenticated, match="signature"):
        TokenVerifier(settings_for(jwks)).verify(jwks.issuer.token("mallory", roles=["finance"], key=stranger))


def test_alg_none_and_hmac_with_the_public_key_are_refused(jwks):
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": int(time.time()) + 600, "roles": ["finance"]}
    unsigned = jwt.encode(body, None, algorithm="none", headers={"kid": jwks.issuer.keys[0].kid})
    public_pem = jwks.issuer.keys[0].private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    verifier = TokenVerifier(settings_for(jwks))
    for forged in (unsigned, _hs256(body, public_pem, jwks.issuer.keys[0].kid)):
        with pytest.raises(Unauthenticated, match="algorithm"):
            verifier.verify(forged)


def _hs256(body: dict, secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + b"." + b64(
        json.dumps(body).encode())
    return (signing_input + b"." + b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


def test_an_es256_key_works_as_well(jwks):
    key = jwks.issuer.rotate("ES256")
    principal = TokenVerifier(settings_for(jwks)).verify(jwks.issuer.token("ec", roles=["scheduler"], key=key))
    assert principal.roles == {"scheduler"}


def test_the_keys_are_found_by_openid_discovery(jwks):
    jwks.issuer.name = jwks.url  # discovery lives under the issuer's own URL
    verifier = TokenVerifier(settings_for(jwks, issuer=jwks.url, jwks_url=""))
    assert verifier.verify(jwks.issuer.token("alice", roles=["finance"])).subject == "alice"


def test_claim_names_are_settings_keycloak_nests_its_roles(jwks):
    token = jwks.issuer.token("kc-user", realm_access={"roles": ["mat_staff"]}, trust={"id": "TR01"})
    principal = TokenVerifier(settings_for(jwks, roles_claim="realm_access.roles", mat_claim="trust.id")).verify(token)
    assert (principal.roles, principal.mat_id) == ({"mat_staff"}, "TR01")


def test_a_machine_clients_client_credentials_token_is_verified_the_same_way(jwks):
    token = jwks.issuer.token("svc-finance-system", roles=["finance"], azp="finance-system")
    principal = TokenVerifier(settings_for(jwks)).verify(token)
    assert (principal.client_id, principal.effective_roles()) == ("finance-system", {"finance"})


def test_no_issuer_configured_refuses_every_token(jwks):
    with pytest.raises(Unauthenticated, match="no token issuer"):
        TokenVerifier(AuthSettings()).verify(jwks.issuer.token("alice"))


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), ("RS256", "HS512")])
def test_symmetric_or_no_algorithms_are_refused_at_start(algorithms):
    with pytest.raises(AuthMisconfigured, match="refused"):
        AuthSettings.from_config({"AUTH": {"issuer": ISSUER, "audience": AUDIENCE, "algorithms": ",".join(algorithms)}})


def test_the_development_issuer_needs_development_mode():
    config = {"AUTH": {"issuer": auth.DEVELOPMENT_ISSUER, "audience": AUDIENCE}}
    with pytest.raises(AuthMisconfigured, match="AUTH_DEVELOPMENT"):
        AuthSettings.from_config(config)
    config["AUTH"]["development"] = "1"
    assert AuthSettings.from_config(config).development


@pytest.mark.parametrize("header, message", [
    (None, "required"), ("Basic abc", "Bearer"), ("Bearer ", "Bearer"), ("Bearer not-a-jwt", "not a JWT")])
def test_a_missing_or_malformed_authorization_header_is_refused(jwks, header, message):
    with pytest.raises(Unauthenticated, match=message):
        TokenVerifier(settings_for(jwks)).verify(auth.bearer_token(header))


def test_the_metrics_credential_is_its_own_token():
    settings = AuthSettings(metrics_token="scrape-secret")
    assert auth.metrics_token_matches(settings, "Bearer scrape-secret")
    assert not auth.metrics_token_matches(settings, "Bearer other")
    assert not auth.metrics_token_matches(AuthSettings(), "Bearer ")


def test_school_and_mat_staff_reach_only_their_own_objects():
    school_a = auth.Principal("a", frozenset({"head_teacher"}), urn="100001")
    mat_staff = auth.Principal("m", frozenset({"mat_staff"}), mat_id="TR01")
    mats = {("100001", dt.date(2026, 9, 1)): "TR01", ("100001", dt.date(2025, 9, 1)): None}

    def mat_of(urn, on):
        return mats.get((urn, on))

    on = dt.date(2026, 9, 1)
    assert auth.reaches(school_a, school_a.effective_roles(), {"school:100001"}, mat_of, on)
    assert not auth.reaches(school_a, school_a.effective_roles(), {"school:100002"}, mat_of, on)
    assert not auth.reaches(school_a, school_a.effective_roles(), set(), mat_of, on)
    assert auth.reaches(mat_staff, mat_staff.effective_roles(), {"school:100001"}, mat_of, on)
    assert auth.reaches(mat_staff, mat_staff.effective_roles(), {"mat:TR01"}, mat_of, on)
    # Before the school joined the MAT, the MAT does not reach it.
    assert not auth.reaches(mat_staff, mat_staff.effective_roles(), {"school:100001"}, mat_of, dt.date(2025, 9, 1))


def test_a_school_role_without_its_school_counts_for_nothing():
    assert auth.Principal("x", frozenset({"head_teacher", "mat_staff"})).effective_roles() == frozenset()
