"""Container HEALTHCHECK: GET /health on the service's own WEB_SERVER_ADDRESS.

Exits 0 when the service answers 200, 1 otherwise. Uses only the standard
library (the images carry no curl).
"""

import os
import sys
import urllib.request

address = os.environ.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000")
host, _, port = address.rpartition(":")
if host in ("", "0.0.0.0", "::", "[::]"):
    host = "127.0.0.1"
path = sys.argv[1] if len(sys.argv) > 1 else "/health"
try:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
    print(f"healthcheck {path}: {exc}", file=sys.stderr)
    sys.exit(1)
