"""One request's correlation id is in the JSON log lines of every service its work reaches."""
import json
import uuid

from tests.conftest import eventually, http_json
from tests.factories import school


def json_lines(path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_a_request_through_two_services_leaves_its_correlation_id_in_both_logs(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases, extra_env={"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"})
    stack.start("membership", "billing")
    correlation_id = f"test-{uuid.uuid4()}"
    status, body = http_json("POST", f"{stack.url('membership')}/members", school(),
                             headers={"X-Correlation-ID": correlation_id})
    assert status == 201, body
    billing_log = stack.processes["billing"].log_path
    membership_log = stack.processes["membership"].log_path

    def billing_handled_it():
        return [line for line in json_lines(billing_log)
                if line.get("correlation_id") == correlation_id and line.get("causation_id")]

    handled = eventually(billing_handled_it, message="billing's log line for the member_joined it handled")
    assert all(line["service"] == "billing" and line["operator"] for line in handled)
    assert any("member_joined" in line["message"] for line in handled)
    request_lines = [line for line in json_lines(membership_log) if line.get("correlation_id") == correlation_id]
    assert any(line["message"].startswith("POST /members 201") for line in request_lines), request_lines
    for line in request_lines + handled:
        assert {"timestamp", "level", "service", "operator", "logger", "message"} <= set(line)
    # every line of both services is one JSON object: no plain-text line slipped through
    for path in (billing_log, membership_log):
        text_lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
        assert text_lines and all(l.lstrip().startswith("{") for l in text_lines), \
            [l for l in text_lines if not l.lstrip().startswith("{")][:3]
