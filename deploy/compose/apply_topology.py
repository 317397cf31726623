"""The compose stack's one-shot `topology` service: apply deploy/rabbitmq/definitions.json.

`partnership-ops topology apply --definitions ...` with the environment compose gives it
(AMQP_URI, RABBITMQ_ADMIN_URI, RABBITMQ_MANAGEMENT_URL, PARTNERSHIP_AMQP_PASSWORD_<SERVICE>),
tried again every few seconds while the broker's management API is not answering yet: compose
cannot wait for a healthy broker everywhere (podman before 4.6 ignores `service_healthy`).
Bounded: TOPOLOGY_ATTEMPTS (default 60) tries, TOPOLOGY_RETRY_SECONDS (default 3) apart.
"""
import os
import subprocess
import sys
import time

attempts = int(os.environ.get("TOPOLOGY_ATTEMPTS", "60"))
pause = float(os.environ.get("TOPOLOGY_RETRY_SECONDS", "3"))
command = ["/opt/venv/bin/partnership-ops", "topology", "apply",
           "--definitions", os.environ.get("TOPOLOGY_DEFINITIONS", "/etc/partnership/definitions.json")]
for attempt in range(1, attempts + 1):
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        print(f"topology applied (attempt {attempt})", flush=True)
        sys.exit(0)
    last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    print(f"topology apply, attempt {attempt}/{attempts}: {last[0]}", file=sys.stderr, flush=True)
    time.sleep(pause)
print("topology apply gave up: is the broker's management API answering?", file=sys.stderr)
sys.exit(1)
