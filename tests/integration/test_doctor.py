"""`evo-watchdog doctor` against the emulators, configured into one stuck mode at a time."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.integration.stack import EVOLUTION_KEY, Stack, running_stack, wait_until
from watchdog.doctor.command import run_doctor
from watchdog.serving import free_port
from watchdog.sim.bots import SETTING_COLUMNS

pytestmark = pytest.mark.integration

ANA = "5511987600001@s.whatsapp.net"
BRUNO = "5511987600002@s.whatsapp.net"
SECRET_HEADER = "header-secret-42"


@contextmanager
def healthy() -> Iterator[Stack]:
    """Two instances with chat bots that expire never and ignore the phone; Ana has a live conversation."""
    with running_stack() as stack:
        for inst in stack.evolution.instances.values():
            for bot in inst.bots:
                bot.expire = 0
                bot.stop_bot_from_me = False
        converse(stack, ANA)
        yield stack


def converse(stack: Stack, jid: str, text: str = "Oi") -> None:
    """One message answered by Dify: the session then holds Dify's conversation_id."""
    stack.inbound(jid, text)
    wait_until(
        lambda: (
            stack.session(jid) is not None
            and stack.session(jid).await_user
            and stack.session(jid).session_id != jid
        ),
        what=f"a reply to {text!r}",
    )


def doctor(stack: Stack, *, fix: bool = False, yes: bool = False, answer: str = "", **env: str) -> Any:
    out, err = io.StringIO(), io.StringIO()
    code = asyncio.run(
        run_doctor(
            stack.settings(**env),
            as_json=True,
            fix=fix,
            yes=yes,
            stdin=io.StringIO(answer),
            stdout=out,
            stderr=err,
        )
    )
    report = json.loads(out.getvalue())
    assert report["exit_code"] == code
    return code, report, err.getvalue()


def set_webhook(stack: Stack, *, url: str, events: list[str], enabled: bool = True) -> None:
    body = {
        "webhook": {
            "enabled": enabled,
            "url": url,
            "headers": {"x-token": SECRET_HEADER},
            "byEvents": False,
            "events": events,
        }
    }
    response = stack.http.post(
        f"{stack.evolution_url}/webhook/set/loja", json=body, headers={"apikey": EVOLUTION_KEY}
    )
    response.raise_for_status()


def our_url() -> str:
    return f"http://127.0.0.1:{free_port()}/webhook/evolution?token=url-secret-7"


def kinds(report: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in report["findings"]}


def test_healthy_configuration_reports_nothing() -> None:
    with healthy() as stack:
        code, report, _ = doctor(stack)
    assert code == 0, report["findings"]
    assert report["healthy"] is True and report["findings"] == []
    assert report["evolution"]["version"] == "2.3.6"
    assert {i["name"] for i in report["instances"]} == {"loja", "suporte"}
    assert any("CONFIG_SESSION_PHONE_VERSION" in note for note in report["not_checked"])


def _workflow(stack: Stack) -> None:
    stack.evolution.instances["suporte"].bots[0].bot_type = "workflow"


def _finish_keyword(stack: Stack) -> None:
    stack.inbound(ANA, "#sair")
    wait_until(lambda: stack.session(ANA).status == "closed", what="closed by the finish keyword")


def _phone_reply(stack: Stack) -> None:
    stack.evolution.instances["loja"].bots[0].stop_bot_from_me = True
    response = stack.http.post(
        f"{stack.evolution_url}/_sim/phone-reply",
        json={"instance": "loja", "remoteJid": ANA, "text": "deixa comigo"},
    )
    response.raise_for_status()
    wait_until(lambda: stack.session(ANA).status == "paused", what="paused from the phone")


def _forgotten(stack: Stack) -> None:
    stack.fault("dify", "forget_after", messages=1)
    converse(stack, BRUNO)  # Dify answers once, then no longer knows the conversation


def _missing_events(stack: Stack) -> None:
    set_webhook(stack, url=our_url(), events=["MESSAGES_UPSERT"])


def _disabled(stack: Stack) -> None:
    set_webhook(
        stack, url=our_url(), events=["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"], enabled=False
    )


def _socket_closed(stack: Stack) -> None:
    stack.fault("evolution", "socket_closed", instance="suporte")


def _unloaded(stack: Stack) -> None:
    stack.fault("evolution", "instance_unloaded", instance="suporte")


def _old_version(version: str) -> Callable[[Stack], None]:
    def setup(stack: Stack) -> None:
        stack.evolution.version = version

    return setup


# (setup, kind, severity, safe fix or None, words the summary must contain)
Mode = tuple[Callable[[Stack], None], str, str, str | None, str]
MODES: dict[str, Mode] = {
    "workflow-bot": (_workflow, "bot_type_ignored", "critical", None, "workflow"),
    "closed-by-keyword": (_finish_keyword, "session_closed", "warning", "delete_session", "'#sair'"),
    "paused-from-phone": (_phone_reply, "session_paused", "warning", "delete_session", "stopBotFromMe"),
    "stale-conversation": (
        _forgotten,
        "stale_conversation",
        "critical",
        "delete_session",
        "Conversation Not",
    ),
    "webhook-events": (_missing_events, "webhook_misconfigured", "warning", "webhook_events", "lacks"),
    "webhook-disabled": (_disabled, "webhook_misconfigured", "warning", "webhook_events", "disabled"),
    "stored-open-live-connecting": (
        _socket_closed,
        "instance_disconnected",
        "critical",
        None,
        "still says 'open'",
    ),
    "not-loaded": (_unloaded, "instance_not_loaded", "critical", None, "not loaded"),
    "defect-872": (_old_version("2.3.2"), "known_defect", "warning", None, "#872"),
    "defect-1359": (_old_version("2.2.3"), "known_defect", "warning", None, "#1359"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_stuck_mode_is_reported_with_its_fix(mode: str) -> None:
    setup, kind, severity, action, words = MODES[mode]
    with healthy() as stack:
        setup(stack)
        code, report, _ = doctor(stack)
    found = [f for f in report["findings"] if f["kind"] == kind and words in f["summary"]]
    assert found, report["findings"]
    assert found[0]["severity"] == severity
    assert found[0]["fix"]
    assert found[0]["safe_fix"] == action
    assert code == (3 if any(f["severity"] == "critical" for f in report["findings"]) else 1)
    assert code == (3 if severity == "critical" else code)
    text = json.dumps(report)
    for secret in (
        "5511987600001",
        "5511987600002",
        SECRET_HEADER,
        "url-secret-7",
        "app-stack",
        EVOLUTION_KEY,
    ):
        assert secret not in text


def test_paused_session_also_names_the_defects_that_keep_it_so() -> None:
    with healthy() as stack:
        stack.evolution.instances["loja"].bots[0].expire = 300
        _phone_reply(stack)
        _, report, _ = doctor(stack)
    issues = {f["evidence"].get("issue") for f in report["findings"] if f["kind"] == "known_defect"}
    assert issues == {877, 1598}
    paused = next(f for f in report["findings"] if f["kind"] == "session_paused")
    assert "#877" in paused["summary"]


def test_workflow_bot_on_2_2_is_not_reported_and_old_versions_are_said_to_honour_the_phone_version() -> None:
    with healthy() as stack:
        _workflow(stack)
        stack.evolution.version, stack.evolution.whatsapp_web_version = "2.2.3", ""
        _, report, _ = doctor(stack)
    assert "bot_type_ignored" not in kinds(report)
    assert any("honours it" in note for note in report["not_checked"])


def test_newer_version_is_not_judged_but_said_unverified() -> None:
    with healthy() as stack:
        _workflow(stack)
        stack.evolution.version = "2.4.1"
        code, report, _ = doctor(stack)
    assert code == 0 and report["findings"] == []
    assert any("newer than 2.3.6" in note for note in report["not_checked"])


def test_webhook_pointing_elsewhere_gets_advice_not_an_automatic_fix() -> None:
    with healthy() as stack:
        set_webhook(stack, url="http://127.0.0.1:9/n8n", events=["MESSAGES_UPSERT"])
        _, report, _ = doctor(stack, WATCHDOG_WEBHOOK_URL=our_url())
    hook = next(f for f in report["findings"] if f["kind"] == "webhook_misconfigured")
    assert hook["evidence"]["problem"] == "elsewhere" and hook["safe_fix"] is None


def test_bad_key_is_critical() -> None:
    with healthy() as stack:
        code, report, _ = doctor(stack, EVOLUTION_API_KEY="wrong-key")
    assert code == 3 and kinds(report) == {"evolution_auth"}


def _break_everything_fixable(stack: Stack) -> None:
    _finish_keyword(stack)  # Ana closed
    stack.fault("dify", "forget_after", messages=1)
    converse(stack, BRUNO)  # Bruno stale
    _missing_events(stack)


def test_fix_yes_repairs_the_safe_ones_and_doctor_then_finds_them_gone() -> None:
    with healthy() as stack:
        _break_everything_fixable(stack)
        _workflow(stack)  # not safe to fix: stays
        code, report, _ = doctor(stack, fix=True, yes=True)
        again_code, again, _ = doctor(stack)
        hook = stack.evolution.instances["loja"].webhook
        sessions = dict(stack.evolution.instances["loja"].sessions)
    before = {f["kind"] for f in report["findings_before_fix"]}
    assert {"session_closed", "stale_conversation", "webhook_misconfigured", "bot_type_ignored"} <= before
    assert sorted(f["action"] for f in report["fixes"]) == [
        "delete_session",
        "delete_session",
        "webhook_events",
    ]
    assert all(f["ok"] for f in report["fixes"])
    assert kinds(report) == kinds(again) == {"bot_type_ignored"}
    assert code == again_code == 3
    assert ANA not in sessions and BRUNO not in sessions
    assert hook is not None and hook.enabled
    assert hook.headers == {"x-token": SECRET_HEADER} and hook.url.endswith("?token=url-secret-7")
    assert {"MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"} <= set(hook.events)


def test_fix_answered_no_changes_nothing() -> None:
    with healthy() as stack:
        _break_everything_fixable(stack)
        events = list(stack.evolution.instances["loja"].webhook.events)  # type: ignore[union-attr]
        code, report, prompt = doctor(stack, fix=True, answer="n\n")
        sessions = {jid: s.status for jid, s in stack.evolution.instances["loja"].sessions.items()}
        hook = stack.evolution.instances["loja"].webhook
    assert "[y/N]" in prompt
    assert report["fixes"] == []
    assert {"session_closed", "stale_conversation", "webhook_misconfigured"} <= kinds(report)
    assert code == 3
    assert sessions[ANA] == "closed" and BRUNO in sessions
    assert hook is not None and hook.events == events


def test_cli_text_report_prompt_and_exit_codes() -> None:
    with healthy() as stack:
        env = {**os.environ, **stack.env()}
        healthy_run = subprocess.run(
            [sys.executable, "-m", "watchdog", "doctor"], env=env, capture_output=True, text=True, timeout=60
        )
        _finish_keyword(stack)
        declined = subprocess.run(
            [sys.executable, "-m", "watchdog", "doctor", "--fix"],
            env=env,
            input="\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        still_closed = stack.session(ANA).status
    assert healthy_run.returncode == 0, healthy_run.stdout + healthy_run.stderr
    assert "No known stuck mode found" in healthy_run.stdout
    assert declined.returncode == 1
    assert "session_closed" in declined.stdout and "fix (safe, --fix applies it)" in declined.stdout
    assert "[y/N]" in declined.stderr and "Nothing changed." in declined.stdout
    assert still_closed == "closed"
    assert "5511987600001" not in declined.stdout + declined.stderr


def test_cli_bad_setting_exits_2() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "doctor"],
        env={**os.environ, "EVOLUTION_URL": "not a url"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "EVOLUTION_URL" in completed.stderr


def test_emulator_dify_settings_and_stored_status_follow_upstream() -> None:
    """The settings row createBot made from the bot (base-chatbot.controller.ts:139); `dify/settings` takes
    every column (dify.schema.ts `difySettingSchema`) and answers 200; a partial body is a 400."""
    with running_stack() as stack:
        base, key = stack.evolution_url, {"apikey": EVOLUTION_KEY}
        defaults = stack.http.get(f"{base}/dify/fetchSettings/loja", headers=key).json()
        partial = stack.http.post(
            f"{base}/dify/settings/loja", json={"expire": 0, "stopBotFromMe": False}, headers=key
        )
        full = {k: v for k, v in defaults.items() if k in SETTING_COLUMNS}
        saved = stack.http.post(
            f"{base}/dify/settings/loja", json={**full, "expire": 0, "stopBotFromMe": False}, headers=key
        )
        after = stack.http.get(f"{base}/dify/fetchSettings/loja", headers=key).json()
        refused = stack.http.get(f"{base}/dify/fetchSettings/loja", headers={"apikey": "wrong"})
        stack.fault("evolution", "socket_closed", instance="loja")
        rows = stack.http.get(f"{base}/instance/fetchInstances", headers=key).json()
        live = stack.http.get(f"{base}/instance/connectionState/loja", headers=key).json()
    assert (defaults["expire"], defaults["keywordFinish"], defaults["stopBotFromMe"]) == (300, "#sair", True)
    assert (defaults["debounceTime"], defaults["listeningFromMe"]) == (0, True)
    assert partial.status_code == 400
    assert saved.status_code == 200
    assert (after["expire"], after["stopBotFromMe"], after["keywordFinish"]) == (0, False, "#sair")
    assert refused.status_code == 401
    assert live["instance"]["state"] == "connecting"
    assert next(r for r in rows if r["name"] == "loja")["connectionStatus"] == "open"  # persisted, stale
