"""`evo-watchdog check` as a user runs it, against the emulators with each fault injected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.stack import Stack, running_stack, wait_until

pytestmark = pytest.mark.integration

ANA = "5511987600001@s.whatsapp.net"


def check(stack: Stack, *args: str, **env: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "check", "--json", *args],
        env={**os.environ, **stack.env(**env)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stderr == "" or completed.returncode != 2, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def kinds(report: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in report["findings"]}


def test_healthy_stack_exits_0_and_lists_every_probe() -> None:
    with running_stack() as stack:
        stack.inbound(ANA)
        wait_until(lambda: stack.session(ANA) is not None and stack.session(ANA).await_user, what="a reply")
        code, report = check(stack, "--canary")
    assert code == 0, report["findings"]
    assert report["healthy"] is True
    probes = {(p["target"], p["probe"]) for p in report["probes"]}
    assert {
        ("evolution", "version"),
        ("evolution", "instances"),
        ("evolution:loja", "connection_state"),
        ("evolution:suporte", "connection_state"),
        ("evolution:loja", "sessions"),
        ("evolution:suporte", "sessions"),
        ("evolution:loja", "webhook"),
        ("evolution:suporte", "webhook"),
        ("dify", "liveness"),
        ("dify", "app_info"),
        ("dify", "canary"),
    } == probes
    sessions = next(
        p for p in report["probes"] if p["probe"] == "sessions" and p["target"] == "evolution:loja"
    )
    assert sessions["data"]["sessions"][0]["conversation"] == "known"
    assert ANA.split("@")[0] not in json.dumps(report)  # no phone numbers in any output


def test_table_output_for_people() -> None:
    with running_stack() as stack:
        stack.fault("evolution", "socket_closed", instance="suporte")
        completed = subprocess.run(
            [sys.executable, "-m", "watchdog", "check"],
            env={**os.environ, **stack.env()},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 1
    assert "instance_disconnected" in completed.stdout and "evolution:suporte" in completed.stdout
    assert "UNHEALTHY: 1 finding(s), worst critical" in completed.stdout


def _drive(stack: Stack, *messages: tuple[str, str]) -> None:
    for text, kind in messages:
        stack.inbound(ANA, text, kind=kind)
        time.sleep(0.1)


FaultCase = tuple[str, str, dict[str, Any], Callable[[Stack], None], str, tuple[str, ...]]
CASES: list[FaultCase] = [
    ("evolution", "api_500", {}, lambda s: None, "evolution_down", ()),
    ("evolution", "slow", {"seconds": 2.0}, lambda s: None, "evolution_down", ()),
    ("evolution", "hang", {}, lambda s: None, "evolution_down", ()),
    ("evolution", "socket_closed", {"instance": "loja"}, lambda s: None, "instance_disconnected", ()),
    ("evolution", "instance_unloaded", {"instance": "loja"}, lambda s: None, "instance_not_loaded", ()),
    ("evolution", "media_wedge", {}, lambda s: _drive(s, ("foto", "image")), "session_wedged", ()),
    ("dify", "hang", {"scope": "all"}, lambda s: None, "dify_down", ()),
    ("dify", "worker_timeout", {}, lambda s: None, "dify_down", ()),
    ("dify", "error_500", {"scope": "all"}, lambda s: None, "dify_down", ()),
    ("dify", "hang", {"scope": "chat"}, lambda s: _drive(s, ("Oi", "text")), "session_wedged", ()),
    ("dify", "slow", {"seconds": 3.0}, lambda s: _drive(s, ("Oi", "text")), "session_wedged", ()),
    (
        "dify",
        "forget_after",
        {"messages": 1},
        lambda s: _drive(s, ("Oi", "text"), ("Alô", "text")),
        "stale_conversation",
        (),
    ),
    ("dify", "truncate_stream", {}, lambda s: None, "dify_canary_failed", ("--canary",)),
    ("dify", "error_event", {}, lambda s: None, "dify_canary_failed", ("--canary",)),
    ("dify", "hang", {"scope": "chat"}, lambda s: None, "dify_canary_failed", ("--canary",)),
    ("dify", "error_500", {"scope": "chat"}, lambda s: None, "dify_canary_failed", ("--canary",)),
    ("dify", "slow", {"seconds": 1.0}, lambda s: None, "dify_canary_failed", ("--canary",)),
]


@pytest.mark.parametrize(
    ("service", "fault", "params", "drive", "expected", "args"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[4]}" for c in CASES],
)
def test_each_fault_is_reported_and_exits_nonzero(
    service: str,
    fault: str,
    params: dict[str, Any],
    drive: Callable[[Stack], None],
    expected: str,
    args: tuple[str, ...],
) -> None:
    with running_stack() as stack:
        stack.fault(service, fault, **params)
        drive(stack)
        if expected == "session_wedged":
            time.sleep(1.2)  # the emulated wedge must outlast WATCHDOG_STALL_SECONDS (1 s) in real time
        code, report = check(stack, *args)
    assert code == 1
    assert expected in kinds(report), report["findings"]


def test_bad_keys_are_named() -> None:
    with running_stack() as stack:
        code, report = check(stack, EVOLUTION_API_KEY="wrong", DIFY_API_KEY="app-wrong")
    assert code == 1
    assert {"evolution_auth", "dify_auth"} <= kinds(report)
    assert "wrong" not in json.dumps(report["findings"])


def test_bad_setting_exits_2_with_one_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "check"],
        env={**os.environ, "WATCHDOG_RECOVERY_MODE": "yolo"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr == (
        "evo-watchdog: WATCHDOG_RECOVERY_MODE='yolo' is invalid: expected one of auto|dry-run|off\n"
    )


def test_dify_liveness_reads_the_health_url_when_set() -> None:
    with running_stack() as stack:
        code, report = check(stack, DIFY_HEALTH_URL=stack.dify_root + "/health")
    assert code == 0, report["findings"]
    liveness = next(p for p in report["probes"] if (p["target"], p["probe"]) == ("dify", "liveness"))
    assert liveness["ok"] and liveness["detail"].startswith("Dify ")


def test_a_dify_url_without_v1_is_a_configuration_warning_not_dify_down() -> None:
    """The URL answers 404 pages: nothing is down and no restart would help; the text says what to fix."""
    with running_stack() as stack:
        code, report = check(stack, DIFY_URL=stack.dify_root)
    assert code == 1
    dify = [f for f in report["findings"] if f["target"] == "dify"]
    assert [(f["kind"], f["severity"]) for f in dify] == [("dify_misconfigured", "warning")]
    assert "check DIFY_URL" in dify[0]["summary"] and len(dify[0]["summary"]) <= 200
    assert "<" not in json.dumps(report)


def test_unreachable_evolution_is_down_not_a_crash() -> None:
    with running_stack() as stack:
        code, report = check(stack, EVOLUTION_URL="http://127.0.0.1:9")
    assert code == 1 and "evolution_down" in kinds(report)


WATCHDOG_HOOK = "http://127.0.0.1:8787/webhook/evolution"


def test_webhook_setup_is_checked_against_watchdog_webhook_url() -> None:
    with running_stack() as stack:
        code, report = check(stack, WATCHDOG_WEBHOOK_URL=WATCHDOG_HOOK)
        assert code == 1
        missing = [f for f in report["findings"] if f["kind"] == "webhook_misconfigured"]
        assert {f["target"] for f in missing} == {"evolution:loja", "evolution:suporte"}
        for instance, events in (
            ("loja", ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"]),
            # Not `[]`: upstream stores every event for an empty list (webhook.controller.ts:28).
            ("suporte", ["SEND_MESSAGE", "CONNECTION_UPDATE"]),
        ):
            hook = {"enabled": True, "url": WATCHDOG_HOOK + "?token=SECRET-TOKEN", "events": events}
            stack.http.post(
                f"{stack.evolution_url}/webhook/set/{instance}",
                json={"webhook": hook},
                headers={"apikey": "stack-evolution-key"},
            ).raise_for_status()
        code, report = check(stack, WATCHDOG_WEBHOOK_URL=WATCHDOG_HOOK)
    problems = {f["target"]: f["summary"] for f in report["findings"] if f["kind"] == "webhook_misconfigured"}
    assert (
        list(problems) == ["evolution:suporte"] and "lacks MESSAGES_UPSERT" in problems["evolution:suporte"]
    )
    assert "SECRET-TOKEN" not in json.dumps(report)


def test_auto_recovery_without_a_notify_url_is_a_warning_like_any_setting_to_fix() -> None:
    """Its pages would reach nobody (journaled `undelivered`): `notify_missing`, a warning that counts
    like `dify_misconfigured` (exit 1); with a notify URL, or not in auto, there is nothing to say."""
    with running_stack() as stack:
        code, report = check(stack, WATCHDOG_RECOVERY_MODE="auto")
        notify_url = "json://127.0.0.1:9/oncall"
        with_url = check(stack, WATCHDOG_RECOVERY_MODE="auto", WATCHDOG_NOTIFY_URLS=notify_url)
    assert code == 1 and report["healthy"] is False
    assert [(f["kind"], f["target"], f["severity"], f["summary"]) for f in report["findings"]] == [
        (
            "notify_missing",
            "watchdog",
            "warning",
            "recovery is auto but a page would reach nobody: set WATCHDOG_NOTIFY_URLS",
        )
    ]
    assert with_url[0] == 0, with_url[1]["findings"]
