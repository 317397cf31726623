"""A token issuer for development and tests: signing keys, their JWKS served over HTTP, tokens.

Never a production identity provider: `make run` makes a signing key in `var/dev-auth/` (mode 600),
serves its public JWKS on 127.0.0.1, and starts the services with the development issuer
(`shared.auth.DEVELOPMENT_ISSUER`) and `AUTH_DEVELOPMENT=1`; `partnership-ops dev-token` mints
tokens with that key. The tests run their own issuer (another name, so no development switch) the
same way. Keys are made and tokens signed with PyJWT and `cryptography`; nothing is hand-rolled.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

DEV_AUDIENCE = "partnership-api"
DEV_JWKS_PORT = 8009
#: Where `make run` keeps the development signing key: var/dev-auth of the checkout (never committed).
DEV_KEY_FOLDER = Path(__file__).resolve().parents[3] / "var" / "dev-auth"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: object
    algorithm: str = "RS256"

    @classmethod
    def generate(cls, algorithm: str = "RS256", kid: str | None = None) -> "SigningKey":
        if algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid or uuid.uuid4().hex[:16], key, algorithm)

    def public_jwk(self) -> dict:
        algorithm = jwt.algorithms.ECAlgorithm if self.algorithm == "ES256" else jwt.algorithms.RSAAlgorithm
        jwk = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    @classmethod
    def from_pem(cls, kid: str, pem: bytes, algorithm: str = "RS256") -> "SigningKey":
        return cls(kid, serialization.load_pem_private_key(pem, password=None), algorithm)


class Issuer:
    """An issuer's name, audience and published keys (the first key signs unless told otherwise)."""

    def __init__(self, name: str, audience: str = DEV_AUDIENCE, keys: Iterable[SigningKey] = ()):
        self.name = name
        self.audience = audience
        self.keys: list[SigningKey] = list(keys) or [SigningKey.generate()]
        self._lock = threading.Lock()

    def jwks(self) -> dict:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self.keys]}

    def rotate(self, algorithm: str = "RS256") -> SigningKey:
        """Publish a new key, first in line to sign; the old ones stay published."""
        key = SigningKey.generate(algorithm)
        with self._lock:
            self.keys.insert(0, key)
        return key

    def token(self, subject: str = "dev-user", *, roles: Iterable[str] = (), urn: str | None = None,
              mat_id: str | None = None, la_code: str | None = None, contact_id: str | None = None,
              lifetime_seconds: int = 3600, key: SigningKey | None = None, issued_at: float | None = None,
              **claims) -> str:
        """A signed access token with the claim names the services read by default."""
        now = int(issued_at if issued_at is not None else time.time())
        body = {"iss": self.name, "aud": self.audience, "sub": subject, "iat": now, "nbf": now,
                "exp": now + lifetime_seconds, "jti": secrets.token_hex(8), "roles": list(roles)}
        for name, value in (("urn", urn), ("mat_id", mat_id), ("la_code", la_code), ("contact_id", contact_id)):
            if value is not None:
                body[name] = value
        body.update(claims)
        key = key or self.keys[0]
        return jwt.encode(body, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})


class JwksServer:
    """Serves an issuer's JWKS (`/jwks.json`) and OpenID discovery document on 127.0.0.1."""

    def __init__(self, issuer: Issuer, port: int = 0, host: str = "127.0.0.1"):
        self.issuer = issuer
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server.requests += 1
                if self.path == "/jwks.json":
                    body = server.issuer.jwks()
                elif self.path == "/.well-known/openid-configuration":
                    body = {"issuer": server.issuer.name, "jwks_uri": server.jwks_url}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="jwks-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    def start(self) -> "JwksServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def development_issuer(folder: Path) -> Issuer:
    """The development issuer whose key lives in `folder` (made on first use, mode 600)."""
    from shared.auth import DEVELOPMENT_ISSUER

    key_path = folder / "signing-key.pem"
    kid_path = folder / "signing-key.kid"
    if not key_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = SigningKey.generate()
        key_path.write_bytes(key.pem())
        key_path.chmod(0o600)
        kid_path.write_text(key.kid)
    key = SigningKey.from_pem(kid_path.read_text().strip(), key_path.read_bytes())
    return Issuer(DEVELOPMENT_ISSUER, DEV_AUDIENCE, [key])


def development_settings(jwks_url: str) -> dict[str, str]:
    """The environment a service needs to accept the development issuer's tokens."""
    from shared.auth import DEVELOPMENT_ISSUER

    return {"AUTH_ISSUER": DEVELOPMENT_ISSUER, "AUTH_AUDIENCE": DEV_AUDIENCE, "AUTH_JWKS_URL": jwks_url,
            "AUTH_DEVELOPMENT": "1"}
