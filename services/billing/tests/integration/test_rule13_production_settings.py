"""Rule 13 (issue 14): in production the service refuses to start without the operator's VAT number,
address and bank details (no placeholder defaults outside development), with one clear message naming
every missing setting. The real `nameko run` of `config.yml`, as a deployment starts it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SERVICE_FOLDER = Path(__file__).resolve().parents[2]


def _start(tmp_path, **environment) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPERATOR_") and k != "PARTNERSHIP_ENV"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'billing.db'}", WEB_SERVER_ADDRESS="127.0.0.1:0",
               PYTHONWARNINGS="ignore", **environment)
    return subprocess.run([sys.executable, "-m", "nameko", "run", "--config", "config.yml",
                           "billing.entrypoints.service:BillingService"], cwd=SERVICE_FOLDER, env=env,
                          capture_output=True, text=True, timeout=90)


def test_production_without_the_operators_identity_refuses_to_start_naming_each_missing_setting(tmp_path):
    started = _start(tmp_path, PARTNERSHIP_ENV="production", OPERATOR_LEGAL_NAME="Buckinghamshire Council",
                     OPERATOR_BANK_SORT_CODE="30-00-00")
    assert started.returncode != 0
    output = started.stdout + started.stderr
    assert "billing will not start in the 'production' environment (PARTNERSHIP_ENV)" in output
    for missing in ("OPERATOR_ADDRESS (OPERATOR.address) is not set",
                    "OPERATOR_VAT_NUMBER (OPERATOR.vat_number) is not set",
                    "OPERATOR_BANK_ACCOUNT_NAME (OPERATOR.bank_account_name) is not set",
                    "OPERATOR_BANK_ACCOUNT_NUMBER (OPERATOR.bank_account_number) is not set",
                    "OPERATOR_BANK_SORT_CODE (OPERATOR.bank_sort_code) is the development placeholder"):
        assert missing in output, missing
    assert "OPERATOR_LEGAL_NAME" not in output
