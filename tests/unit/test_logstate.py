"""LogState on a fake clock: bursts in a window and whose they are, logouts, a silent Dify, Docker outages."""

from __future__ import annotations

from watchdog.clock import FakeClock
from watchdog.signals.logrules import classify, clean
from watchdog.signals.logstate import LogState
from watchdog.signals.logwatch import FOLLOWING, MISSING, UNREACHABLE

EVO = "evolution_api"
DIFY = "docker-api-1"


def evolution_line(level: str, text: str, instance: str = "loja") -> str:
    tag = f"[{instance}]" if instance else ""
    return f"[Evolution API] {tag} 1 - Tue Dec 01 2026 00:22:26   {level}  [X] [string] {text}"


def state(clock: FakeClock) -> LogState:
    return LogState(
        clock, evolution=EVO, dify=(DIFY,), burst_count=3, burst_window=60, dify_silent_seconds=120
    )


def kinds(s: LogState, inbound: bool = False) -> list[str]:
    return sorted(f.kind for f in s.findings(lambda seconds: inbound))


def test_error_burst_needs_the_count_within_the_window(clock: FakeClock) -> None:
    s = state(clock)
    http_500 = classify(clean("{ event: 'error', data: { error: 'Internal Server Error', status: 500 } }"))
    for _ in range(2):
        s.record(EVO, http_500)
        clock.advance(25)
    assert kinds(s) == []
    s.record(EVO, http_500)
    burst = [f for f in s.findings(lambda _: False) if f.kind == "error_burst"]
    assert burst and burst[0].evidence == {
        "rule": "http_500",
        "count": 3,
        "container": EVO,
        "service": "evolution",
    }
    clock.advance(40)  # the first two fall out of the 60 s window
    assert kinds(s) == []


def test_difys_errors_in_evolutions_log_are_a_burst_about_dify(clock: FakeClock) -> None:
    """dify.service.ts:316 prints Dify's error body; a burst of them names Dify, wherever they were read."""
    body = "[Evolution API]  1 - Tue Dec 01 2026 00:22:26   ERROR  [DifyService] [object] "
    dify_error = classify(body + "{ code: 'internal_server_error', message: 'x', status: 500 }")
    assert dify_error.rule == "dify_error"
    s = state(clock)
    for _ in range(3):
        s.record(EVO, dify_error)
    (burst,) = s.findings(lambda _: False)
    assert burst.target == f"container:{EVO}" and burst.evidence["service"] == "dify"
    assert "dify's, as evolution_api logged them" in burst.summary
    for _ in range(3):  # Dify's own container: its lines are its own
        s.record(DIFY, classify("2026-12-01 00:22:25,983 ERROR [x.py:1]  boom"))
    found = {(f.evidence["container"], f.evidence["service"]) for f in s.findings(lambda _: False)}
    assert found == {(EVO, "dify"), (DIFY, "dify")}


def test_logout_names_the_instance_and_clears_when_it_connects_again(clock: FakeClock) -> None:
    s = state(clock)
    s.record(EVO, classify(evolution_line("WARN", 'Instance "loja" - LOGOUT')))
    found = s.findings(lambda _: False)
    assert [(f.kind, f.target) for f in found] == [("logged_out", "evolution:loja")]
    s.record(EVO, classify(evolution_line("INFO", "CONNECTED TO WHATSAPP")))
    assert kinds(s) == []


def test_removed_is_no_logout_and_ends_one(clock: FakeClock) -> None:
    """Deleting a connected instance logs LOGOUT then REMOVED (instance.controller.ts:427,439): an
    operator's act, not a lost WhatsApp session; a removal alone is no finding either."""
    s = state(clock)
    s.record(EVO, classify(evolution_line("WARN", 'Instance "vendas" - REMOVED', "")))
    assert kinds(s) == []
    s.record(EVO, classify(evolution_line("WARN", 'Instance "loja" - LOGOUT', "")))
    assert kinds(s) == ["logged_out"]
    s.record(EVO, classify(evolution_line("WARN", 'Instance "loja" - REMOVED', "")))
    assert kinds(s) == []


def test_no_log_line_makes_a_dead_processor(clock: FakeClock) -> None:
    """Evolution 2.3.x never prints `Message stream error:` (the processor dies silently): the logs say
    nothing about the processor, and that line is no more than an error line."""
    s = state(clock)
    s.follower(EVO, FOLLOWING, "abc started 1")
    for text in (
        "Message stream error: TypeError: Cannot read properties of undefined (reading 'next')",
    ) * 3:
        s.record(EVO, classify(evolution_line("ERROR", text)))
    clock.advance(3600)
    assert "processor_dead" not in kinds(s)


def test_dify_silent_only_while_customers_keep_writing(clock: FakeClock) -> None:
    s = state(clock)
    s.line(DIFY)
    clock.advance(121)
    assert kinds(s, inbound=False) == []
    assert kinds(s, inbound=True) == ["dify_silent"]
    s.line(DIFY)
    assert kinds(s, inbound=True) == []


def test_follower_states_become_findings(clock: FakeClock) -> None:
    s = state(clock)
    s.follower(EVO, UNREACHABLE, "ConnectionError")
    s.follower(DIFY, MISSING, "no container named docker-api-1")
    found = {(f.kind, f.target) for f in s.findings(lambda _: False)}
    assert found == {("docker_unreachable", "docker"), ("container_missing", "container:docker-api-1")}
    s.follower(EVO, FOLLOWING, "abc started 3")
    assert ("docker_unreachable", "docker") not in {(f.kind, f.target) for f in s.findings(lambda _: False)}
