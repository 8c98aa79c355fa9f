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
) -> dict[str, Any]:
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
        result("evolution", "instances", False, "GET /instance/fetchInstances timed out", error="timeout"),
        result("evolution:loja", "sessions", False, "HTTP 500: boom", error="http", status=500),
    ]
    findings = assess(results, now=0, stall_seconds=60)
    assert kinds(findings) == [("evolution_down", "evolution")]
    assert findings[0].severity is Severity.CRITICAL
    assert "timed out" in findings[0].summary and "HTTP 500" in findings[0].summary


def test_a_failing_version_probe_alone_is_never_evolution_down() -> None:
    """GET / waits on web.whatsapp.com (Evolution >= 2.3.1): fetchInstances is the liveness signal."""
    results = [
        result("evolution", "version", False, "GET / timed out after 2s", error="timeout"),
        result("evolution", "instances", watched=[], missing=[]),
    ]
    assert assess(results, now=0, stall_seconds=60) == []


def test_same_failure_on_two_probes_is_told_once() -> None:
    failed = {"error": "http", "status": 500}
    results = [
        result("dify", "liveness", False, "HTTP 500: Internal Server Error", **failed),
        result("dify", "app_info", False, "HTTP 500: Internal Server Error", **failed),
    ]
    (finding,) = assess(results, now=0, stall_seconds=60)
    assert (finding.kind, finding.summary) == (
        "dify_down",
        "liveness, app_info: HTTP 500: Internal Server Error",
    )


def test_a_404_page_is_a_configuration_warning_not_down() -> None:
    detail = "HTTP 404: GET /info is not an API endpoint; check DIFY_URL: Not Found The requested URL was..."
    results = [
        result("dify", "liveness", False, detail, error="config", status=404),
        result("dify", "app_info", False, detail, error="config", status=404),
        result(
            "evolution", "instances", False, "HTTP 404: ...; check EVOLUTION_URL", error="config", status=404
        ),
    ]
    findings = assess(results, now=0, stall_seconds=60)
    assert kinds(findings) == [("dify_misconfigured", "dify"), ("evolution_misconfigured", "evolution")]
    assert all(f.severity is Severity.WARNING for f in findings)
    dify = next(f for f in findings if f.target == "dify")
    assert dify.summary.startswith("configuration, not an outage: liveness, app_info: HTTP 404: GET /info")
    assert len(dify.summary) <= 200 and dict(dify.evidence) == {
        "probes": ["liveness", "app_info"],
        "status": [404, 404],
    }


def test_canary_findings_by_how_it_failed() -> None:
    app = result(
        "dify",
        "canary",
        False,
        "app failed after 4 events (error event invalid_param): Run failed: x",
        failure="app",
        code="invalid_param",
    )
    refused = result(
        "dify",
        "canary",
        False,
        "HTTP 400: the app refused the canary (invalid_param): ...",
        error="config",
        status=400,
        code="invalid_param",
    )
    key = result("dify", "canary", False, "HTTP 401: Access token is invalid", error="auth", status=401)
    down = result("dify", "canary", False, "canary could not connect in time", error="timeout")
    by_case = {
        name: [
            (f.kind, str(f.severity), dict(f.evidence).get("failure"))
            for f in assess([r], now=0, stall_seconds=9)
        ]
        for name, r in (("app", app), ("refused", refused), ("key", key), ("down", down))
    }
    assert by_case == {
        "app": [("dify_canary_failed", "critical", "app")],
        "refused": [("dify_misconfigured", "warning", None)],
        "key": [("dify_auth", "critical", None)],
        "down": [("dify_down", "critical", None)],
    }


def test_finding_text_is_one_bounded_line() -> None:
    page = "<!doctype html>\n<title>502</title>\n" + "<p>Bad Gateway</p>\n" * 40
    results = [
        result("dify", "liveness", False, page, error="http", status=502),
        result("dify", "app_info", False, "x" * 500, error="http", status=502),
    ]
    (finding,) = assess(results, now=0, stall_seconds=60)
    assert len(finding.summary) <= 200 and "\n" not in finding.summary and "<" not in finding.summary


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
