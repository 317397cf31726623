"""`make run`'s development issuer and `partnership-ops dev-token`: a key made once, its JWKS served
over HTTP on 127.0.0.1, tokens the services accept only in development mode."""
from __future__ import annotations

import subprocess
import sys

import pytest

from deploy.local import development_auth
from shared.auth import AuthMisconfigured, AuthSettings, TokenVerifier


def test_a_minted_token_is_accepted_with_the_development_settings_only(tmp_path):
    env, server = development_auth(tmp_path / "dev-auth", port=0)
    try:
        minted = subprocess.run(
            [sys.executable, "-m", "partnership_ops", "dev-token", "--role", "head_teacher", "--urn", "110000",
             "--contact-id", "C-1", "--key-folder", str(tmp_path / "dev-auth")],
            capture_output=True, text=True, timeout=120, check=True).stdout.strip()
        config = {"AUTH": {"issuer": env["AUTH_ISSUER"], "audience": env["AUTH_AUDIENCE"],
                           "jwks_url": env["AUTH_JWKS_URL"], "development": env["AUTH_DEVELOPMENT"]}}
        principal = TokenVerifier(AuthSettings.from_config(config)).verify(minted)
        assert (principal.roles, principal.urn, principal.contact_id) == ({"head_teacher"}, "110000", "C-1")
        with pytest.raises(AuthMisconfigured, match="AUTH_DEVELOPMENT"):
            AuthSettings.from_config({"AUTH": {**config["AUTH"], "development": ""}})
        assert (tmp_path / "dev-auth" / "metrics-token").read_text()
        assert oct((tmp_path / "dev-auth" / "signing-key.pem").stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()


def test_dev_token_without_a_key_says_to_start_the_services(tmp_path):
    result = subprocess.run([sys.executable, "-m", "partnership_ops", "dev-token", "--role", "finance",
                             "--key-folder", str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "make run" in result.stderr
