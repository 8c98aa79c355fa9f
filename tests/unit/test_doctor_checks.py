"""Doctor's checks are pure functions of a Snapshot: each stuck mode, its severity and its fix."""

from __future__ import annotations

from dataclasses import replace

from watchdog.clients.evolution import InstanceWebhook
from watchdog.doctor.checks import diagnose, instance_state, version_defects
from watchdog.doctor.diagnosis import (
    DELETE_SESSION,
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_WARNING,
    WEBHOOK_EVENTS,
    exit_code,
    safe_fixes,
)
from watchdog.doctor.limits import not_checked
from watchdog.doctor.snapshot import KNOWN, UNKNOWN, UNVERIFIED, BotView, InstanceView, SessionView, Snapshot
from watchdog.doctor.versions import parse_version
from watchdog.model import Finding, Severity, contact_id

JID = "5511999990000@s.whatsapp.net"
KEY = b"test-contact-key-0123"
BOT = BotView("b1", True, "chatBot", expire=0, keyword_finish="bye", stop_bot_from_me=False, key_held=True)
HOOK = InstanceWebhook(
    url="http://wd:8787/webhook/evolution?token=t",
    enabled=True,
    by_events=False,
    events=("MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"),
)


def session(status: str = "opened", conversation: str = KNOWN) -> SessionView:
    return SessionView("b1", contact_id(JID, key=KEY), status, conversation, remote_jid=JID)


def snap(version: str = "2.3.6", **instance: object) -> Snapshot:
    fields: dict[str, object] = {
        "name": "loja",
        "stored_status": "open",
        "live_state": "open",
        "bots": (BOT,),
        "sessions": (session(),),
        "webhook": HOOK,
        **instance,
    }
    return Snapshot(version=version, instances=(InstanceView(**fields),), dify_configured=True)  # type: ignore[arg-type]


def kinds(s: Snapshot) -> list[str]:
    return [d.finding.kind for d in diagnose(s)]


def test_healthy_snapshot_has_no_findings() -> None:
    assert diagnose(snap()) == []
    assert exit_code(diagnose(snap())) == EXIT_OK


def test_stale_conversation_wins_over_status_and_is_critical_with_a_safe_fix() -> None:
    found = diagnose(snap(sessions=(session("opened", UNKNOWN),)))
    assert [d.finding.kind for d in found] == ["stale_conversation"]
    assert found[0].finding.severity is Severity.CRITICAL
    assert found[0].fix.action == DELETE_SESSION and found[0].fix.subject == JID
    assert JID.split("@")[0] not in found[0].finding.summary + found[0].fix.text
    assert exit_code(found) == EXIT_CRITICAL


def test_closed_and_paused_sessions_are_warnings_naming_the_cause() -> None:
    closed = diagnose(snap(sessions=(session("closed"),)))
    assert closed[0].finding.kind == "session_closed" and "'bye'" in closed[0].finding.summary
    paused_bot = replace(BOT, stop_bot_from_me=True)
    paused = [d for d in diagnose(snap(bots=(paused_bot,), sessions=(session("paused"),)))]
    assert {d.finding.kind for d in paused} == {"session_paused", "known_defect"}
    assert "stopBotFromMe" in next(d for d in paused if d.finding.kind == "session_paused").finding.summary
    assert exit_code(closed) == EXIT_WARNING


def test_expire_note_only_where_expire_is_known_not_enforced() -> None:
    bot = replace(BOT, expire=300)
    on_236 = diagnose(snap(bots=(bot,), sessions=(session("closed"),)))
    on_224 = diagnose(snap("2.2.4", bots=(bot,), sessions=(session("closed"),)))
    closed_236 = next(d for d in on_236 if d.finding.kind == "session_closed")
    closed_224 = next(d for d in on_224 if d.finding.kind == "session_closed")
    assert "#877" in closed_236.finding.summary and "#877" not in closed_224.finding.summary


def test_unverified_conversation_is_not_a_finding_but_a_note() -> None:
    s = snap(sessions=(session("opened", UNVERIFIED),))
    assert diagnose(s) == []
    assert any("not verified" in note for note in not_checked(s))


def test_instance_state_against_stored_status() -> None:
    def one(stored: str, live: str | None, read: bool = True) -> list[tuple[str, Severity]]:
        inst = InstanceView("i", stored_status=stored, live_state=live, live_read=read)
        return [(d.finding.kind, d.finding.severity) for d in instance_state(inst)]

    assert one("open", "open") == []
    assert one("open", "connecting") == [("instance_disconnected", Severity.CRITICAL)]
    assert one("close", "close") == [("instance_disconnected", Severity.CRITICAL)]
    assert one("close", "open") == [("instance_status_stale", Severity.WARNING)]
    assert one("open", None) == [("instance_not_loaded", Severity.CRITICAL)]
    assert one("open", None, read=False) == []  # reported as unreadable instead


def test_workflow_bot_only_on_versions_without_its_code_path() -> None:
    bot = replace(BOT, bot_type="workflow")
    assert kinds(snap("2.3.4", bots=(bot,))) == ["bot_type_ignored"]
    assert "bot_type_ignored" in kinds(snap("2.3.0", bots=(bot,)))
    assert "bot_type_ignored" not in kinds(snap("2.2.3", bots=(bot,)))
    assert "bot_type_ignored" not in kinds(snap("2.3.7", bots=(bot,)))
    assert kinds(snap("2.3.6", bots=(replace(bot, enabled=False),))) == []


def test_version_defects_need_the_exposed_setup() -> None:
    def issues(version: str, bot: BotView) -> set[object]:
        s = snap(version, bots=(bot,))
        return {d.finding.evidence["issue"] for d in version_defects(s, parse_version(version))}

    assert issues("2.3.6", BOT) == set()
    assert issues("2.3.6", replace(BOT, expire=5)) == {877}
    assert issues("2.3.6", replace(BOT, stop_bot_from_me=True)) == {1598}
    assert issues("2.3.3", BOT) == {872}
    assert issues("2.2.3", BOT) == {872, 1359}
    assert issues("2.3.3", replace(BOT, enabled=False)) == set()


def test_webhook_problems_and_which_are_safe_to_fix() -> None:
    lacking = diagnose(snap(webhook=replace(HOOK, events=("MESSAGES_UPSERT",))))
    disabled = diagnose(snap(webhook=replace(HOOK, enabled=False)))
    assert [d.fix.action for d in lacking] == [WEBHOOK_EVENTS] == [d.fix.action for d in disabled]
    assert "token=t" not in lacking[0].finding.summary + str(lacking[0].finding.evidence)
    elsewhere = replace(
        snap(webhook=replace(HOOK, url="http://n8n:5678/hook")), webhook_url="http://wd/webhook/evolution"
    )
    found = diagnose(elsewhere)
    assert [d.finding.evidence["problem"] for d in found] == ["elsewhere"] and found[0].fix.action == ""


def test_unread_parts_are_warnings_and_do_not_fake_a_webhook_finding() -> None:
    s = snap(webhook=None, unread=("webhook (webhook/find): HTTP 500: boom",))
    s = replace(s, webhook_url="http://wd/webhook/evolution")
    assert kinds(s) == ["unreadable"]


def test_unreachable_evolution_is_the_only_finding() -> None:
    down = Finding("evolution_down", "evolution", Severity.CRITICAL, "Evolution API: refused")
    found = diagnose(Snapshot(unreachable=down))
    assert [d.finding for d in found] == [down] and "EVOLUTION_URL" in found[0].fix.text
    assert not_checked(Snapshot(unreachable=down)) == ["everything: Evolution could not be read"]


def test_one_repair_per_contact_even_with_two_findings() -> None:
    two = diagnose(snap(sessions=(session("closed"), session("paused"))))
    assert len(two) == 2 and len(safe_fixes(two)) == 1


def test_missing_configured_instance_is_a_warning() -> None:
    found = diagnose(replace(snap(), missing=("ghost",)))
    assert [(d.finding.kind, d.finding.target) for d in found] == [("instance_unknown", "evolution:ghost")]


def test_phone_version_notes() -> None:
    assert any("honours it" in n for n in not_checked(snap("2.3.0")))
    newer = not_checked(replace(snap("2.3.6"), whatsapp_web_version="2.3000.1"))
    assert any("ignored by 2.3.6" in n and "2.3000.1" in n for n in newer)
    assert any("no whatsappWebVersion" in n for n in not_checked(snap("2.3.6")))
    assert any("newer than 2.3.6" in n for n in not_checked(snap("2.4.0")))
    assert any("not a version number" in n for n in not_checked(snap("latest")))


def test_no_instance_webhook_is_a_note_unless_the_watchdog_url_is_known() -> None:
    hookless = snap(webhook=None)
    assert diagnose(hookless) == []
    assert any("WEBHOOK_GLOBAL_URL" in n for n in not_checked(hookless))
    told = replace(hookless, webhook_url="http://wd:8787/webhook/evolution?token=t")
    found = diagnose(told)
    assert [d.finding.evidence["problem"] for d in found] == ["missing"] and found[0].fix.action == ""
    assert not any("WEBHOOK_GLOBAL_URL" in n for n in not_checked(told))
    assert "token=t" not in repr(told)
