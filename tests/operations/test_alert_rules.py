"""The alert rules in deploy/prometheus are valid, and every one has a promtool test that fires and clears it."""
import pathlib
import shutil
import subprocess

import pytest
import yaml

PROMETHEUS = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="promtool (Debian package prometheus) is not installed; "
                                                              ".ci/run installs it")


def alert_names() -> set[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def test_every_alert_has_a_case_where_it_fires_and_a_later_one_where_it_has_cleared():
    fires, clears = {}, {}
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                name = case["alertname"]
                when = case["eval_time"]
                if case.get("exp_alerts"):
                    fires.setdefault(name, []).append((group["name"], when))
                else:
                    clears.setdefault(name, []).append((group["name"], when))
    missing_fire = alert_names() - set(fires)
    missing_clear = alert_names() - set(clears)
    assert not missing_fire, f"alerts with no test where they fire: {sorted(missing_fire)}"
    assert not missing_clear, f"alerts with no test where they are quiet: {sorted(missing_clear)}"

    def seconds(duration: str) -> int:
        return int(duration[:-1]) * {"m": 60, "h": 3600, "d": 86400}[duration[-1]]

    for name, cases in fires.items():
        # a quiet case after a firing one in the same group: the alert clears, not merely starts late
        assert any(g == fg and seconds(t) > seconds(ft) for fg, ft in cases for g, t in clears[name]), \
            f"{name}: no test shows it clearing after it fired"


@needs_promtool
def test_prometheus_configuration_and_rules_are_valid():
    subprocess.run([promtool, "check", "rules", str(PROMETHEUS / "alerts.yml")], check=True, capture_output=True)
    subprocess.run([promtool, "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml")],
                   check=True, capture_output=True)


@needs_promtool
def test_promtool_unit_tests_of_the_alert_rules_pass():
    result = subprocess.run([promtool, "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
