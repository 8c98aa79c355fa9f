"""Doctor's text and JSON: fixes shown, safe ones marked, no phone number, exit code by worst severity."""

from __future__ import annotations

import json

from watchdog.doctor.checks import diagnose
from watchdog.doctor.fixes import FixResult
from watchdog.doctor.limits import not_checked
from watchdog.doctor.render import DoctorReport, render_fixes, render_json, render_text
from watchdog.doctor.snapshot import UNKNOWN, BotView, InstanceView, SessionView, Snapshot
from watchdog.model import contact_id

JID = "5511988887777@s.whatsapp.net"
KEY = b"test-contact-key-0123"


def report(*sessions: SessionView) -> DoctorReport:
    bot = BotView(
        "b1", True, "chatBot", expire=0, keyword_finish="bye", stop_bot_from_me=False, key_held=True
    )
    inst = InstanceView("loja", "open", "open", bots=(bot,), sessions=sessions)
    snap = Snapshot(version="2.3.6", whatsapp_web_version="2.3000.9", instances=(inst,), dify_configured=True)
    return DoctorReport(snap, diagnose(snap), not_checked(snap))


def test_text_marks_the_safe_fix_and_hides_the_number() -> None:
    text = render_text(report(SessionView("b1", contact_id(JID, key=KEY), "opened", UNKNOWN, remote_jid=JID)))
    assert "CRITICAL  stale_conversation  evolution:loja" in text
    assert "fix (safe, --fix applies it):" in text
    assert contact_id(JID, key=KEY) in text and "5511988887777" not in text
    assert "Not checked (the API cannot show it):" in text and "CONFIG_SESSION_PHONE_VERSION" in text
    assert text.rstrip().endswith("1 safe fix(es): run `evo-watchdog doctor --fix`")
    assert "exit 3" in text


def test_healthy_text_and_json() -> None:
    healthy = report()
    assert "No known stuck mode found (exit 0)." in render_text(healthy)
    body = json.loads(render_json(healthy))
    assert (body["healthy"], body["worst"], body["exit_code"], body["findings"]) == (True, "ok", 0, [])
    assert body["instances"][0] == {
        "name": "loja",
        "stored_status": "open",
        "live_state": "open",
        "bots": [{"id": "b1", "bot_type": "chatBot", "enabled": True}],
        "sessions": 0,
    }
    assert "fixes" not in body


def test_json_after_fix_carries_results_and_the_findings_before() -> None:
    before = report(SessionView("b1", contact_id(JID, key=KEY), "closed", "none", remote_jid=JID))
    results = [FixResult("delete_session", "loja", contact_id(JID, key=KEY), True, "deleted")]
    body = json.loads(render_json(report(), before=before, fixes=results))
    assert body["exit_code"] == 0
    assert [f["kind"] for f in body["findings_before_fix"]] == ["session_closed"]
    assert body["findings_before_fix"][0]["safe_fix"] == "delete_session"
    assert body["fixes"] == [
        {
            "action": "delete_session",
            "instance": "loja",
            "contact": contact_id(JID, key=KEY),
            "ok": True,
            "detail": "deleted",
        }
    ]
    assert "5511988887777" not in json.dumps(body)
    assert render_fixes(results).startswith("fixed  delete_session  evolution:loja")
