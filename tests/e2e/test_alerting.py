"""A fault in the emulated Evolution, seen by a real watchdog, alerted by a real Prometheus with the
shipped rules, routed by a real Alertmanager with the shipped config to a webhook, then resolved."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Receiver
from tests.e2e.promkit import Alertmanager, Prometheus, run_watchdog
from tests.integration.stack import EVOLUTION_KEY, running_stack

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERT = "EvolutionInstanceNotOpen"


def rules_for_test(workdir: Path) -> list[Path]:
    """The shipped rules, with only ALERT's `for:` shortened in a copy.

    The shipped rule waits 2 minutes before firing, longer than this test may take; promtool unit
    tests (deploy/prometheus/tests) cover the shipped duration. Everything else is used unchanged.
    """
    text = (DEPLOY / "prometheus/rules/alerts.yml").read_text()
    own_block = rf"(- alert: {ALERT}\n(?:(?!\s*- alert:).*\n)*?\s+for: )\S+"
    text, count = re.subn(own_block, r"\g<1>2s", text, count=1)
    assert count == 1, f"{ALERT} has no `for:` to shorten"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alerts.yml").write_text(text)
    (workdir / "recording.yml").write_text((DEPLOY / "prometheus/rules/recording.yml").read_text())
    return [workdir / "recording.yml", workdir / "alerts.yml"]


def alertmanager_for_test(path: Path, receiver_url: str) -> Path:
    """The shipped Alertmanager config with its placeholder webhooks pointed at `receiver_url` and
    1 s grouping delays (the shipped 10 s-5 min would outlast the test); routes and inhibitions unchanged."""
    text = (DEPLOY / "alertmanager/alertmanager.yml").read_text()
    text = text.replace("http://alert-webhook.invalid", receiver_url)
    text = re.sub(r"(group_wait|group_interval): \S+", r"\1: 1s", text)
    path.write_text(text)
    return path


def notified(posts: list[tuple[str, dict[str, str], Any]], status: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, alert) for each ALERT notification with `status` the receiver got."""
    found = []
    for path, _, body in posts:
        if isinstance(body, dict):
            for alert in body.get("alerts", []):
                if alert["labels"].get("alertname") == ALERT and alert["status"] == status:
                    found.append((path, alert))
    return found


def active(prom: Prometheus) -> list[dict[str, Any]]:
    return [a for a in prom.alerts() if a["labels"]["alertname"] == ALERT]


def test_instance_alert_fires_reaches_the_receiver_and_resolves(tmp_path: Path, receiver: Receiver) -> None:
    rules = rules_for_test(tmp_path / "rules")
    am_config = alertmanager_for_test(tmp_path / "alertmanager.yml", receiver.url)
    # dry-run: the watchdog reports but does not repair, so the fault stays visible to Prometheus
    # until the test repairs it the way the runbook tells on-call to.
    with (
        running_stack() as stack,
        Alertmanager(tmp_path, am_config) as am,
        # A probe timeout as long as the interval, so a loaded machine does not fake a disconnection.
        run_watchdog(
            stack.env(WATCHDOG_RECOVERY_MODE="dry-run", WATCHDOG_PROBE_TIMEOUT_SECONDS="1")
        ) as watchdog_url,
        Prometheus(
            tmp_path, targets=[watchdog_url.removeprefix("http://")], rule_files=rules, alertmanager=am.url
        ) as prom,
    ):
        prom.wait_for('watchdog_instance_connection_state{exported_instance="loja",state="open"} == 1')
        assert [a for a in active(prom) if a["state"] == "firing"] == []

        stack.fault("evolution", "socket_closed", instance="loja")
        firing = prom.wait_for(f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}', timeout=45)
        assert [s["metric"]["exported_instance"] for s in firing] == ["loja"]
        assert [a["annotations"]["summary"] for a in active(prom) if a["state"] == "firing"] == [
            "WhatsApp instance loja is not connected"
        ]

        posts = receiver.wait_for(lambda p: notified(p, "firing"), timeout=30)
        path, alert = notified(posts, "firing")[0]
        assert path == "/critical", "severity=critical must route to the on-call receiver"
        assert alert["labels"]["exported_instance"] == "loja"
        assert alert["annotations"]["runbook_url"].endswith("/docs/runbook.md#evolutioninstancenotopen")
        assert [
            a["labels"]["exported_instance"] for a in am.alerts() if a["labels"]["alertname"] == ALERT
        ] == ["loja"]

        # The runbook's fix: restart the instance (never logout).
        response = stack.http.post(
            f"{stack.evolution_url}/instance/restart/loja", headers={"apikey": EVOLUTION_KEY}
        )
        response.raise_for_status()
        posts = receiver.wait_for(lambda p: notified(p, "resolved"), timeout=30)
        assert notified(posts, "resolved")[0][0] == "/critical"
        deadline = time.monotonic() + 30
        while active(prom):
            assert time.monotonic() < deadline, f"{ALERT} still active in Prometheus: {active(prom)}"
            time.sleep(0.25)
        assert prom.query(f'ALERTS{{alertname="{ALERT}"}}') == []


def test_evolution_down_inhibits_its_own_instance_alerts(tmp_path: Path, receiver: Receiver) -> None:
    """The shipped inhibition rules, in a real Alertmanager: EvolutionApiDown on one watchdog mutes that
    watchdog's instance and bot alerts, not another watchdog's."""
    am_config = alertmanager_for_test(tmp_path / "alertmanager.yml", receiver.url)
    common = {"job": "evolution-watchdog", "severity": "critical"}
    alerts = [
        {"alertname": "EvolutionApiDown", "instance": "wd1:8787", "component": "evolution"},
        {
            "alertname": ALERT,
            "instance": "wd1:8787",
            "exported_instance": "loja",
            "component": "evolution-instance",
        },
        {
            "alertname": "BotConversationsStalled",
            "instance": "wd1:8787",
            "exported_instance": "loja",
            "component": "bot",
        },
        {
            "alertname": ALERT,
            "instance": "wd2:8787",
            "exported_instance": "loja",
            "component": "evolution-instance",
        },
    ]
    with Alertmanager(tmp_path, am_config) as am:
        response = httpx.post(f"{am.url}/api/v2/alerts", json=[{"labels": common | a} for a in alerts])
        assert response.status_code == 200, response.text

        def states() -> dict[tuple[str, str], str]:
            return {
                (a["labels"]["alertname"], a["labels"]["instance"]): a["status"]["state"] for a in am.alerts()
            }

        expected = {
            ("EvolutionApiDown", "wd1:8787"): "active",
            (ALERT, "wd1:8787"): "suppressed",
            ("BotConversationsStalled", "wd1:8787"): "suppressed",
            (ALERT, "wd2:8787"): "active",
        }
        deadline = time.monotonic() + 30
        while states() != expected:
            assert time.monotonic() < deadline, f"inhibition not as expected: {states()}; {am.diagnostics()}"
            time.sleep(0.2)
        posts = receiver.wait_for(lambda p: len(notified_names(p)) >= 2, timeout=30)
        assert notified_names(posts) >= {("EvolutionApiDown", "wd1:8787"), (ALERT, "wd2:8787")}


def notified_names(posts: list[tuple[str, dict[str, str], Any]]) -> set[tuple[str, str]]:
    return {
        (alert["labels"]["alertname"], alert["labels"]["instance"])
        for _, _, body in posts
        if isinstance(body, dict)
        for alert in body.get("alerts", [])
    }
