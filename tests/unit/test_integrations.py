"""Integrations as data (watchdog/integrations.py) and the session findings they drive (health.py)."""

from __future__ import annotations

from typing import Any

import pytest

from watchdog.errors import UpstreamHTTPError, UpstreamMisconfigured, UpstreamTimeout
from watchdog.health import assess
from watchdog.integrations import BY_SESSION_TYPE, INTEGRATIONS, integration, is_absent
from watchdog.model import ProbeResult, Severity


def sessions(*rows: dict[str, Any]) -> list[ProbeResult]:
    return [ProbeResult("evolution:loja", "sessions", True, 0.01, 0.0, "", {"sessions": list(rows)})]


def row(integration: str = "dify", **fields: Any) -> dict[str, Any]:
    base = {
        "contact": "c-0123456789",
        "status": "opened",
        "await_user": True,
        "updated_at": 0.0,
        "conversation": "none",
        "bot_type": "",
        "integration": integration,
    }
    return {**base, **fields}


def test_the_seven_integrations_and_their_routes() -> None:
    # chatbot.router.ts:233-240 (Chatwoot aside); evolutionBot's sessions are typed 'evolution'
    assert [i.name for i in INTEGRATIONS] == [
        "dify",
        "typebot",
        "openai",
        "flowise",
        "n8n",
        "evolutionBot",
        "evoai",
    ]
    assert BY_SESSION_TYPE["evolution"].name == "evolutionBot"
    typebot = integration("typebot")
    assert typebot.find_path("loja 1") == "/typebot/find/loja%201"
    assert typebot.sessions_path("b1", "loja") == "/typebot/fetchSessions/b1/loja"
    assert typebot.change_status_path("loja") == "/typebot/changeStatus/loja"
    assert typebot.settings_path("loja") == "/typebot/fetchSettings/loja"
    assert {i.unwedge_status for i in INTEGRATIONS} == {"delete"}
    assert [i.name for i in INTEGRATIONS if i.enforces_expire] == ["typebot"]
    assert [i.name for i in INTEGRATIONS if i.reopens_paused] == ["openai"]
    assert {i.name for i in INTEGRATIONS if not i.marks_answered} == {"flowise", "evolutionBot", "evoai"}


@pytest.mark.parametrize(
    ("error", "absent"),
    [
        (UpstreamHTTPError("evolution", 400, "Typebot is disabled"), True),
        (UpstreamMisconfigured("evolution", 404, "GET /evoai/find/loja is not an API endpoint"), True),
        (UpstreamHTTPError("evolution", 400, "instance requires property remoteJid"), False),
        (UpstreamHTTPError("evolution", 404, 'The "loja" instance does not exist'), False),
        (UpstreamHTTPError("evolution", 500, "Error fetching sessions"), False),
        (UpstreamTimeout("evolution", "GET /n8n/find/loja timed out"), False),
    ],
)
def test_an_integration_that_is_off_is_told_from_one_that_fails(error: Any, absent: bool) -> None:
    assert is_absent(error) is absent


def test_session_findings_name_their_integration() -> None:
    found = assess(sessions(row("typebot", await_user=False)), now=100, stall_seconds=60)
    assert [(f.kind, f.evidence["integration"]) for f in found] == [("session_wedged", "typebot")]
    assert "typebot bot busy for 100s" in found[0].summary


def test_busy_is_judged_only_where_await_user_tells_it() -> None:
    quiet = row("flowise", await_user=False, busy_visible=False)
    assert assess(sessions(quiet), now=1000, stall_seconds=60) == []


def test_paused_and_closed_say_what_becomes_of_them_in_each_integration() -> None:
    found = assess(
        sessions(
            row("openai", status="paused", expire=5),
            row("typebot", status="paused", expire=5),
            row("n8n", status="paused", expire=5),
            row("typebot", status="closed", expire=5),
            row("evoai", status="closed", expire=0),
        ),
        now=3600,
        stall_seconds=60,
    )
    by = [(f.kind, f.evidence["integration"], f.severity) for f in found]
    assert by == [
        ("session_paused", "openai", Severity.WARNING),
        ("session_paused", "typebot", Severity.WARNING),
        ("session_paused", "n8n", Severity.WARNING),
        ("session_closed", "typebot", Severity.WARNING),
        ("session_closed", "evoai", Severity.WARNING),
    ]
    openai, typebot, n8n, closed, plain = found
    assert "next message reopens it" in openai.summary and openai.evidence["reopens"] is True
    assert "after 5 min idle starts a new one" in typebot.summary and "expired" not in typebot.evidence
    assert n8n.evidence["expired"] is True and "which N8n does not clear" in n8n.summary
    assert closed.evidence["expired"] is True  # a closed Typebot session never reaches its expiry check
    assert plain.summary.endswith("the evoai bot ignores this contact")


def test_a_session_shared_with_another_integration_says_so() -> None:
    found = assess(sessions(row("typebot", status="closed", shared_with=["dify"])), now=0, stall_seconds=60)
    assert found[0].evidence["shared_with"] == ["dify"]
