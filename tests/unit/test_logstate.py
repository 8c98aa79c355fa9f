"""LogState on a fake clock: bursts in a window, logouts, a dead processor, a silent Dify, Docker outages."""

from __future__ import annotations

from watchdog.clock import FakeClock
from watchdog.signals.logrules import classify, clean
from watchdog.signals.logstate import LogState
from watchdog.signals.logwatch import FOLLOWING, MISSING, STOPPED, UNREACHABLE

EVO = "evolution_api"
DIFY = "docker-api-1"


def evolution_line(level: str, text: str, instance: str = "loja") -> str:
    return f"[Evolution API] [{instance}]  1  -  Tue Oct 21 2025 11:41:02   {level:<7}  [X]  [string] {text}"


def state(clock: FakeClock) -> LogState:
    return LogState(
        clock, evolution=EVO, dify=(DIFY,), burst_count=3, burst_window=60, dify_silent_seconds=120
    )


def kinds(s: LogState, inbound: bool = False) -> list[str]:
    return sorted(f.kind for f in s.findings(lambda seconds: inbound))


def test_error_burst_needs_the_count_within_the_window(clock: FakeClock) -> None:
    s = state(clock)
    http_500 = classify(clean('{"status":500,"error":"Internal Server Error"}'))
    for _ in range(2):
        s.record(EVO, http_500)
        clock.advance(25)
    assert kinds(s) == []
    s.record(EVO, http_500)
    burst = [f for f in s.findings(lambda _: False) if f.kind == "error_burst"]
    assert burst and burst[0].evidence == {"rule": "http_500", "count": 3, "container": EVO}
    clock.advance(40)  # the first two fall out of the 60 s window
    assert kinds(s) == []


def test_logout_names_the_instance_and_clears_when_it_connects_again(clock: FakeClock) -> None:
    s = state(clock)
    s.record(EVO, classify(evolution_line("WARN", 'Instance "loja" - LOGOUT')))
    found = s.findings(lambda _: False)
    assert [(f.kind, f.target) for f in found] == [("logged_out", "evolution:loja")]
    s.record(EVO, classify(evolution_line("INFO", "CONNECTED TO WHATSAPP")))
    assert kinds(s) == []


def test_processor_dead_lasts_until_the_container_restarts(clock: FakeClock) -> None:
    s = state(clock)
    s.follower(EVO, FOLLOWING, "abc started 1")
    s.record(EVO, classify(evolution_line("ERROR", "Message stream error:")))
    clock.advance(3600)
    assert kinds(s) == ["processor_dead"]
    s.follower(EVO, STOPPED, "exited")
    s.follower(EVO, FOLLOWING, "abc started 2")
    assert kinds(s) == []


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
