"""The management API client tries an idempotent call again when the listener drops the connection
(RabbitMQ's does under load), a bounded number of times, and never repeats a call that is not."""
import http.server
import json
import threading

import pytest

from partnership_ops.topology import Management, TopologyError


class _DropsFirst(http.server.BaseHTTPRequestHandler):
    """Closes the first `drops` connections without an answer, then answers `{"ok": true}`."""

    drops = 1
    seen: list = []

    def _answer(self):
        type(self).seen.append(self.command)
        if len(type(self).seen) <= type(self).drops:
            self.close_connection = True
            self.connection.close()
            return
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _DropsFirst.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DropsFirst)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, Management(f"http://127.0.0.1:{httpd.server_address[1]}", "admin", "secret", timeout=5)
    httpd.shutdown()
    httpd.server_close()


def test_an_idempotent_call_whose_connection_was_dropped_is_tried_again(server):
    _httpd, management = server
    assert management.request("PUT", "/api/vhosts/v", {}) == {"ok": True}
    assert _DropsFirst.seen == ["PUT", "PUT"]


def test_a_call_that_is_not_idempotent_is_not_repeated(server):
    _httpd, management = server
    with pytest.raises(TopologyError, match="not reachable"):
        management.request("POST", "/api/something", {})
    assert _DropsFirst.seen == ["POST"]


def test_the_attempts_are_bounded(server):
    _DropsFirst.drops = 10
    try:
        _httpd, management = server
        with pytest.raises(TopologyError, match="3 attempts"):
            management.request("GET", "/api/overview")
        assert _DropsFirst.seen == ["GET"] * 3
    finally:
        _DropsFirst.drops = 1
