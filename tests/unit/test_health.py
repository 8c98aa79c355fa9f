"""health.assess: probe results in, findings out; time comes from the caller."""

from __future__ import annotations

from typing import Any

from watchdog.clock import FakeClock
from watchdog.health import assess
from watchdog.model import ProbeResult, Severity


def result(target: str, probe: str, ok: bool = True, detail: str = "", **data: Any) -> ProbeResult:
    return ProbeResult(target, probe, ok, 0.01, 0.0, detail, data)


def session(
    status: str = "opened", await_user: bool = True, updated_at: float = 0.0, conversation: str = "none"
):  # type: ignore[no-untyped-def]
    return {
        "contact": "c-0123456789",
        "status": status,
        "await_user": await_user,
        "updated_at": updated_at,
        "conversation": conversation,
        "bot_type": "chatBot",
    }


def kinds(findings: list[Any]) -> list[tuple[str, str]]:
    return sorted((f.kind, f.target) for f in findings)


def test_all_ok_gives_no_findings(clock: FakeClock) -> None:
    results = [
        result("evolution", "version"),
        result("evolution", "instances", watched=["loja"], missing=[]),
        result("evolution:loja", "connection_state", state="open"),
        result("evolution:loja", "sessions", sessions=[session()]),
        result("dify", "liveness"),
    ]
    assert assess(results, now=clock.time(), stall_seconds=60) == []


def test_evolution_failures_fold_into_one_evolution_down() -> None:
    results = [
        result("evolution", "version", False, "GET / timed out", error="timeout"),
        result("evolution", "instances", False, "HTTP 500: boom", error="http", status=500),
    ]
    findings = assess(results, now=0, stall_seconds=60)
    assert kinds(findings) == [("evolution_down", "evolution")]
    assert findings[0].severity is Severity.CRITICAL
    assert "timed out" in findings[0].summary and "HTTP 500" in findings[0].summary


def test_auth_failure_names_the_key_and_is_not_also_reported_as_down() -> None:
    results = [
        result("evolution", "version"),
        result("evolution", "instances", False, "HTTP 401: Unauthorized", error="auth", status=401),
        result("dify", "app_info", False, "HTTP 401: Access token is invalid", error="auth", status=401),
    ]
    findings = assess(results, now=0, stall_seconds=60)
    assert kinds(findings) == [("dify_auth", "dify"), ("evolution_auth", "evolution")]
    by_kind = {f.kind: f.summary for f in findings}
    assert by_kind["evolution_auth"].startswith("EVOLUTION_API_KEY was refused: HTTP 401")
    assert by_kind["dify_auth"].startswith("DIFY_API_KEY was refused")


def test_instance_states() -> None:
    results = [
        result("evolution:a", "connection_state", False, "connecting", state="connecting"),
        result("evolution:b", "connection_state", False, "no state", error="protocol"),
        result("evolution:c", "connection_state", False, "HTTP 404: gone", error="http", status=404),
        result("evolution:d", "connection_state", False, "HTTP 500: x", error="http", status=500),
    ]
    assert kinds(assess(results, now=0, stall_seconds=60)) == [
        ("evolution_down", "evolution"),
        ("instance_disconnected", "evolution:a"),
        ("instance_not_loaded", "evolution:b"),
        ("instance_unknown", "evolution:c"),
    ]


def test_configured_instance_missing_from_evolution() -> None:
    results = [result("evolution", "instances", False, "", watched=["a", "ghost"], missing=["ghost"])]
    assert kinds(assess(results, now=0, stall_seconds=60)) == [("instance_unknown", "evolution:ghost")]


def test_busy_session_is_wedged_only_after_the_stall_limit(clock: FakeClock) -> None:
    busy = [
        result("evolution:loja", "sessions", sessions=[session(await_user=False, updated_at=clock.time())])
    ]
    clock.advance(60)
    assert assess(busy, now=clock.time(), stall_seconds=60) == []
    clock.advance(0.5)
    findings = assess(busy, now=clock.time(), stall_seconds=60)
    assert kinds(findings) == [("session_wedged", "evolution:loja")]
    assert findings[0].evidence["contact"] == "c-0123456789"


def test_stale_conversation_paused_and_closed_sessions() -> None:
    sessions = [session(conversation="unknown"), session(status="paused"), session(status="closed")]
    findings = assess([result("evolution:loja", "sessions", sessions=sessions)], now=0, stall_seconds=60)
    assert [(f.kind, f.severity) for f in findings] == [
        ("stale_conversation", Severity.CRITICAL),
        ("session_paused", Severity.WARNING),
        ("session_closed", Severity.WARNING),
    ]


def test_dify_down() -> None:
    findings = assess(
        [result("dify", "liveness", False, "refused", error="unreachable")], now=0, stall_seconds=9
    )
    assert kinds(findings) == [("dify_down", "dify")]
