"""The shipped Prometheus rules and Alertmanager config, checked by the real promtool and amtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import require_binary

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy/prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = REPO / "deploy/alertmanager/alertmanager.yml"
RUNBOOK = REPO / "docs/runbook.md"
RUNBOOK_URL = re.compile(r"^https://\S+/docs/runbook\.md#([a-z0-9-]+)$")


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def test_rule_files_pass_promtool_check() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run([promtool, "check", "rules", *map(str, RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(RULES) >= 2


def test_rule_unit_tests_pass() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run([promtool, "test", "rules", *map(str, UNIT_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts with no test that expects them to fire"
    assert names - quiet == set(), "alerts with no test that expects them quiet"
    assert firing | quiet <= names, "unit tests name alerts that do not exist"


def test_unit_tests_fail_when_an_alert_stops_firing(tmp_path: Path) -> None:
    """Mutation check: with every alert renamed, each alert's firing expectations must fail."""
    promtool = require_binary("promtool", "prometheus")
    shutil.copytree(PROMETHEUS / "tests", tmp_path / "tests")
    (tmp_path / "rules").mkdir()
    for path in RULES:
        text = re.sub(r"- alert: (\w+)", r"- alert: \1Renamed", path.read_text())
        (tmp_path / "rules" / path.name).write_text(text)
    result = run([promtool, "test", "rules", *(str(tmp_path / "tests" / p.name) for p in UNIT_TESTS)])
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+), time:", result.stdout + result.stderr))
    assert {rule["alert"] for rule in alert_rules()} <= failed


def test_alerts_follow_the_community_conventions() -> None:
    rules = alert_rules()
    assert len(rules) >= 15
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]*|[A-Z]{2,})+", name), f"{name} is not PascalCase"
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["labels"]["component"], name
        for annotation in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(annotation), f"{name} has no {annotation}"


def test_rules_use_only_metrics_the_watchdog_documents() -> None:
    """Metric names are a public contract (docs/metrics.md); a typo in a rule would never fire."""
    documented = set(
        re.findall(r"^\| `(watchdog_[a-z_]+)`", (REPO / "docs" / "metrics.md").read_text(), re.M)
    )
    used = set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"\b(watchdog_[a-z_]+)", rule["expr"]))
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert len(used) >= 10
    assert used - documented == set()


def test_every_runbook_url_points_at_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alert_rules():
        match = RUNBOOK_URL.match(rule["annotations"]["runbook_url"])
        assert match, rule["annotations"]["runbook_url"]
        assert match.group(1) == rule["alert"].lower(), rule["alert"]
        assert match.group(1) in headings, f"docs/runbook.md has no section for {rule['alert']}"


def test_example_prometheus_config_passes_promtool_check() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run([promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_example_alertmanager_config_passes_amtool_check() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    result = run([amtool, "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=EvolutionApiDown"], "oncall-critical"),
        (["severity=warning", "alertname=BotTurnaroundSlow"], "team-warning"),
        (["severity=info"], "team-info"),
        (["alertname=SomethingUnlabelled"], "team-warning"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    result = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
