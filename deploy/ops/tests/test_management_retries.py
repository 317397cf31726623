"""The management API client tries an idempotent call again when the listener drops the connection
(RabbitMQ's does under load), a bounded number of times, and never repeats a call that is not.

The listener is a separate process: in the test process eventlet's monkey patching (nameko's pytest
plugin) would run an in-process server's thread and the client on one hub."""
import subprocess
import sys
import textwrap

import pytest

from partnership_ops.topology import Management, TopologyError

SERVER = textwrap.dedent("""
    import http.server, sys
    drops = int(sys.argv[1])
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            seen.append(self.command)
            print(self.command, flush=True)
            if len(seen) <= drops:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()
""")


class Listener:
    """A management API stand-in that drops the first `drops` connections without an answer."""

    def __init__(self, drops: int):
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(drops)], stdout=subprocess.PIPE,
                                        text=True)
        port = int(self.process.stdout.readline())
        self.management = Management(f"http://127.0.0.1:{port}", "admin", "secret", timeout=5)

    def seen(self) -> list[str]:
        self.process.kill()
        out, _ = self.process.communicate(timeout=10)
        return out.split()

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def listener(request):
    made = Listener(request.param)
    yield made
    made.close()


@pytest.mark.parametrize("listener", [1], indirect=True)
def test_an_idempotent_call_whose_connection_was_dropped_is_tried_again(listener):
    assert listener.management.request("PUT", "/api/vhosts/v", {}) == {"ok": True}
    assert listener.seen() == ["PUT", "PUT"]


@pytest.mark.parametrize("listener", [1], indirect=True)
def test_a_call_that_is_not_idempotent_is_not_repeated(listener):
    with pytest.raises(TopologyError, match="not reachable"):
        listener.management.request("POST", "/api/something", {})
    assert listener.seen() == ["POST"]


@pytest.mark.parametrize("listener", [10], indirect=True)
def test_the_attempts_are_bounded(listener):
    with pytest.raises(TopologyError, match="3 attempts"):
        listener.management.request("GET", "/api/overview")
    assert listener.seen() == ["GET"] * 3
