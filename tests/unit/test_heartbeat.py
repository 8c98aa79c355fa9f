"""The heartbeat's bookkeeping (signals/heartbeat.py) on a fake clock, its settings, and its findings'
place in the ladder."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from watchdog.clock import FakeClock
from watchdog.config import Settings, e2e_targets
from watchdog.errors import ConfigError
from watchdog.metrics import Metrics
from watchdog.recovery.attribution import Attribution
from watchdog.recovery.problems import Level, problems_from
from watchdog.signals.heartbeat import (
    E2E_NO_REPLY,
    E2E_NOT_DELIVERED,
    E2E_NOT_RECEIVED,
    E2E_SLOW,
    NOT_OPEN,
    OK,
    UNHEARD,
    HeartbeatTracker,
)
from watchdog.signals.webhook import Envelope
from watchdog.timescale import scaled_settings

PROBER, BOT = "5511911110000", "5511922220000"


def upsert(instance: str, peer: str, *, from_me: bool = False, alt: str = "") -> Envelope:
    key: dict[str, Any] = {"remoteJid": peer, "fromMe": from_me, "id": "3EB0X"}
    if alt:
        key.update(remoteJidAlt=alt, addressingMode="lid")
    return Envelope("messages.upsert", instance, {"key": key, "messageType": "conversation"})


def sent(instance: str, peer: str) -> Envelope:
    key = {"remoteJid": peer, "fromMe": True, "id": "3EB0Y"}
    return Envelope("send.message", instance, {"key": key, "messageType": "conversation"})


def jid(number: str) -> str:
    return f"{number}@s.whatsapp.net"


@pytest.fixture
def parts() -> tuple[FakeClock, HeartbeatTracker, CollectorRegistry]:
    clock = FakeClock()
    registry = CollectorRegistry()
    tracker = HeartbeatTracker(clock, Metrics(registry), prober="sonda", deadline=60, slow_after=5)
    tracker.numbers = {"loja": BOT}
    tracker.prober_number = PROBER
    tracker.observe(sent("sonda", jid(BOT)))  # webhooks reach the watchdog (the prober's own echo)
    return clock, tracker, registry


def test_a_healthy_heartbeat_measures_each_leg_and_counts_as_success(parts: Any) -> None:
    clock, tracker, registry = parts
    tracker.sending("loja", 1)
    clock.advance(0.5)
    assert tracker.observe(upsert("loja", jid(PROBER)))  # received by the bot instance
    clock.advance(2.0)
    assert tracker.observe(sent("loja", jid(PROBER)))  # the bot answered
    assert tracker.remaining("loja") == pytest.approx(57.5)
    clock.advance(0.5)
    assert tracker.observe(upsert("sonda", jid(BOT)))  # the answer reached the prober
    assert tracker.remaining("loja") == 0
    verdict = tracker.judge("loja", "open")
    assert (verdict.result, verdict.retry, verdict.slow) == (OK, False, False)
    assert dict(verdict.legs) == {"received": 0.5, "replied": 2.0, "delivered": 0.5, "round_trip": 3.0}
    tracker.conclude(verdict)
    assert tracker.findings() == []
    assert registry.get_sample_value("watchdog_e2e_success", {"instance": "loja"}) == 1
    count = {"instance": "loja", "leg": "round_trip"}
    assert registry.get_sample_value("watchdog_e2e_seconds_count", count) == 1
    assert registry.get_sample_value("watchdog_e2e_seconds_sum", {**count, "leg": "replied"}) == 2.0


@pytest.mark.parametrize(
    ("legs", "kind"),
    [((), E2E_NOT_RECEIVED), (("received",), E2E_NO_REPLY), (("received", "replied"), E2E_NOT_DELIVERED)],
)
def test_a_failure_is_sent_again_once_and_then_named_by_the_first_missing_leg(
    parts: Any, legs: tuple[str, ...], kind: str
) -> None:
    clock, tracker, registry = parts
    for attempt in (1, 2):
        tracker.sending("loja", attempt)
        if "received" in legs:
            tracker.observe(upsert("loja", jid(PROBER)))
        if "replied" in legs:
            tracker.observe(sent("loja", jid(PROBER)))
        clock.advance(59.9)
        assert tracker.remaining("loja") > 0
        clock.advance(0.1)
        assert tracker.remaining("loja") == 0
        verdict = tracker.judge("loja", "open")
        assert verdict.result == kind
        assert verdict.retry is (attempt == 1)
        assert tracker.findings() == []  # the first failure does not count yet
    tracker.conclude(verdict)
    [finding] = tracker.findings()
    assert (finding.kind, finding.target, finding.evidence["attempts"]) == (kind, "evolution:loja", 2)
    assert str(finding.severity) == ("warning" if kind == E2E_NOT_DELIVERED else "critical")
    assert PROBER not in str(finding.as_dict()) and BOT not in str(finding.as_dict())
    assert registry.get_sample_value("watchdog_e2e_success", {"instance": "loja"}) == 0


def test_the_retry_that_comes_back_clears_the_failure(parts: Any) -> None:
    clock, tracker, _ = parts
    tracker.sending("loja", 1)
    clock.advance(60)
    assert tracker.judge("loja", "open").retry
    tracker.sending("loja", 2)
    for envelope in (upsert("loja", jid(PROBER)), sent("loja", jid(PROBER)), upsert("sonda", jid(BOT))):
        tracker.observe(envelope)
    verdict = tracker.judge("loja", "open")
    assert (verdict.result, verdict.attempt) == (OK, 2)
    tracker.conclude(verdict)
    assert tracker.findings() == []


def test_an_instance_that_is_not_open_explains_the_silence_itself(parts: Any) -> None:
    clock, tracker, registry = parts
    tracker.sending("loja", 1)
    clock.advance(60)
    verdict = tracker.judge("loja", "connecting")
    assert (verdict.result, verdict.retry) == (NOT_OPEN, False)
    tracker.conclude(verdict)
    assert tracker.findings() == []  # instance_disconnected says it; no e2e finding on top
    assert registry.get_sample_value("watchdog_e2e_success", {"instance": "loja"}) == 0
    tracker.sending("loja", 1)
    clock.advance(60)
    assert tracker.judge("loja", None).result == NOT_OPEN  # unknown state: no e2e_not_received either


def test_a_slow_bot_turn_is_a_warning_and_a_prompt_one_clears_it(parts: Any) -> None:
    clock, tracker, _ = parts
    for turn, expected in ((7.5, [E2E_SLOW]), (1.0, [])):
        tracker.sending("loja", 1)
        tracker.observe(upsert("loja", jid(PROBER)))
        clock.advance(turn)
        tracker.observe(sent("loja", jid(PROBER)))
        tracker.observe(upsert("sonda", jid(BOT)))
        verdict = tracker.judge("loja", "open")
        assert (verdict.result, verdict.retry) == (OK, False)  # it came back: no re-send
        tracker.conclude(verdict)
        assert [f.kind for f in tracker.findings()] == expected
        if expected:
            assert (
                "took 7.5s" in tracker.findings()[0].summary
                and "threshold 5s" in tracker.findings()[0].summary
            )


def test_heartbeat_traffic_is_recognised_and_customers_are_not(parts: Any) -> None:
    _, tracker, _ = parts
    customer = "5511987600001@s.whatsapp.net"
    assert not tracker.observe(upsert("loja", customer))
    assert not tracker.observe(sent("loja", customer))
    assert not tracker.observe(Envelope("connection.update", "loja", {"state": "open"}))
    assert tracker.observe(upsert("loja", "5511911110000:3@s.whatsapp.net"))  # a device suffix
    assert tracker.observe(upsert("loja", "12345@lid", alt=jid(PROBER)))  # LID addressing
    assert tracker.observe(upsert("sonda", customer))  # everything on the prober is heartbeat traffic
    assert tracker.observe(Envelope("connection.update", "sonda", {"state": "open"}))
    assert not tracker.observe(upsert("outra", jid(PROBER)))  # no heartbeat goes to that instance


def test_the_session_reset_uses_the_jid_the_bot_instance_saw(parts: Any) -> None:
    _, tracker, _ = parts
    tracker.sending("loja", 1)
    assert tracker.prober_jid("loja") == jid(PROBER)  # before anything arrived: the prober's own jid
    tracker.observe(upsert("loja", "12345@lid", alt=jid(PROBER)))
    assert tracker.prober_jid("loja") == "12345@lid"  # the session is keyed by key.remoteJid


def test_silence_with_no_webhook_ever_heard_is_a_setup_problem_not_a_dead_processor() -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    tracker = HeartbeatTracker(clock, Metrics(registry), prober="sonda", deadline=60, slow_after=5)
    tracker.numbers, tracker.prober_number = {"loja": BOT}, PROBER
    tracker.sending("loja", 1)
    clock.advance(60)
    verdict = tracker.judge("loja", "open")
    assert (verdict.result, verdict.retry) == (UNHEARD, False)
    tracker.conclude(verdict)
    assert tracker.findings() == []
    assert "point their webhooks here" in tracker.view()["instances"]["loja"]["note"]
    tracker.observe(Envelope("connection.update", "loja", {"state": "open"}))  # the bot instance's, at last
    tracker.sending("loja", 1)
    clock.advance(60)
    assert tracker.judge("loja", "open").result == E2E_NOT_RECEIVED


def test_contact_findings_about_the_prober_are_no_customer_s(parts: Any) -> None:
    """The sessions probe sees the prober's session busy while the bot works on a heartbeat."""
    from watchdog.model import Finding, Severity

    _, tracker, _ = parts
    tracker.sending("loja", 1)
    tracker.observe(upsert("loja", "12345@lid", alt=jid(PROBER)))

    def wedged(subject: str) -> Finding:
        return Finding("session_wedged", "evolution:loja", Severity.WARNING, "busy", subject=subject)

    customer = wedged("5511987600001@s.whatsapp.net")
    kept = tracker.customers_only([wedged(jid(PROBER)), wedged("12345@lid"), customer, finding("dify_down")])
    assert [f.subject for f in kept] == [customer.subject, ""]


def test_legs_before_a_send_or_without_an_outstanding_heartbeat_count_for_nothing(parts: Any) -> None:
    clock, tracker, _ = parts
    tracker.observe(upsert("loja", jid(PROBER)))  # a late answer from an earlier process
    tracker.sending("loja", 1)
    clock.advance(60)
    assert tracker.judge("loja", "open").result == E2E_NOT_RECEIVED


def test_a_send_that_failed_withdraws_the_finding_and_a_repair_clears_it(parts: Any) -> None:
    clock, tracker, _ = parts

    def fail() -> None:
        for attempt in (1, 2):
            tracker.sending("loja", attempt)
            clock.advance(60)
            verdict = tracker.judge("loja", "open")
        tracker.conclude(verdict)

    fail()
    assert [f.kind for f in tracker.findings()] == [E2E_NOT_RECEIVED]
    tracker.sending("loja", 1)
    tracker.send_failed("loja", "sendText from sonda failed: Connection Closed")
    assert tracker.findings() == []
    assert tracker.view()["instances"]["loja"]["note"].endswith("Connection Closed")
    fail()
    tracker.repaired("outra")
    assert len(tracker.findings()) == 1
    tracker.repaired(None)  # a service restart
    assert tracker.findings() == []


def test_the_view_shows_the_last_legs_and_the_heartbeat_under_way(parts: Any) -> None:
    clock, tracker, _ = parts
    tracker.sending("loja", 1)
    tracker.observe(upsert("loja", jid(PROBER)))
    tracker.observe(sent("loja", jid(PROBER)))
    tracker.observe(upsert("sonda", jid(BOT)))
    tracker.conclude(tracker.judge("loja", "open"))
    tracker.sending("loja", 1)
    clock.advance(2)
    loja = tracker.view()["instances"]["loja"]
    assert loja["result"] == OK and set(loja["legs"]) == {"received", "replied", "delivered", "round_trip"}
    assert loja["under_way"] == {"attempt": 1, "for_seconds": 2.0, "legs": {}}


# ---- settings ---------------------------------------------------------------------------------------

ON = {"WATCHDOG_E2E_FROM_INSTANCE": "sonda", "WATCHDOG_E2E_TO_NUMBER": "loja=+5511922220000"}


def test_the_heartbeat_is_off_by_default_and_its_numbers_keep_digits_only() -> None:
    assert Settings.from_env({}).e2e_from_instance == ""
    settings = Settings.from_env(ON)
    assert settings.e2e_to_number == (("loja", "5511922220000"),)
    assert settings.e2e_interval_seconds == 300 and settings.e2e_message == "evo-watchdog heartbeat"


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        ({"WATCHDOG_E2E_INTERVAL_SECONDS": "30"}, "WATCHDOG_E2E_INTERVAL_SECONDS=30 is invalid: at least 60"),
        ({"WATCHDOG_E2E_TO_NUMBER": ""}, "WATCHDOG_E2E_TO_NUMBER='' is invalid: the heartbeat"),
        ({"EVOLUTION_INSTANCES": "loja,sonda"}, "WATCHDOG_E2E_FROM_INSTANCE='sonda' is invalid"),
        ({"WATCHDOG_E2E_TO_NUMBER": "sonda=5511922220000"}, "WATCHDOG_E2E_FROM_INSTANCE='sonda' is invalid"),
        (
            {"EVOLUTION_INSTANCES": "outra"},
            "WATCHDOG_E2E_TO_NUMBER='loja=5511922220000' is invalid: loja not among",
        ),
        (
            {"EVOLUTION_INSTANCES": "loja,outra", "WATCHDOG_E2E_TO_NUMBER": "5511922220000"},
            "WATCHDOG_E2E_TO_NUMBER='5511922220000' is invalid: a bare number needs exactly one watched "
            "instance, not 2",
        ),
    ],
)
def test_heartbeat_settings_that_cannot_work_stop_start_up_in_one_line(
    env: dict[str, str], starts: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**ON, **env})
    assert str(caught.value).startswith(starts) and "\n" not in str(caught.value)


def test_a_short_interval_is_fine_while_the_heartbeat_is_off() -> None:
    """The floor guards WhatsApp from our traffic; a scaled run (timescale.py) may go below it when off."""
    assert Settings.from_env({"WATCHDOG_E2E_INTERVAL_SECONDS": "30"}).e2e_interval_seconds == 30


def test_at_a_time_factor_the_heartbeats_floor_scales_like_every_duration() -> None:
    """Emulators only (the demo): the interval is the default times the factor, below the user's floor,
    set in code; under the floor times the factor it is refused like a user's value."""
    on = {"WATCHDOG_E2E_FROM_INSTANCE": "prober", "WATCHDOG_E2E_TO_NUMBER": "loja=5511922220000"}
    settings = scaled_settings(0.1, on)
    assert settings.e2e_interval_seconds == 30 and settings.probe_interval_seconds == 1.5
    assert scaled_settings(0.1, {**on, "WATCHDOG_E2E_INTERVAL_SECONDS": "6"}).e2e_interval_seconds == 6
    with pytest.raises(
        ConfigError, match=r"^WATCHDOG_E2E_INTERVAL_SECONDS=5 is invalid: at least 6 at factor"
    ):
        scaled_settings(0.1, {**on, "WATCHDOG_E2E_INTERVAL_SECONDS": "5"})
    with pytest.raises(ConfigError, match="WATCHDOG_E2E_INTERVAL_SECONDS=30 is invalid: at least 60"):
        Settings.from_env({**on, "WATCHDOG_E2E_INTERVAL_SECONDS": "30"})  # a user's floor stays


def test_a_bare_number_names_the_one_watched_instance_resolved_at_use() -> None:
    assert e2e_targets((("", "5511922220000"),), {"loja"}) == {"loja": "5511922220000"}
    with pytest.raises(ConfigError, match="not 0"):
        e2e_targets((("", "5511922220000"),), set())
    with pytest.raises(ConfigError, match="outra not among"):
        e2e_targets((("loja", "1"), ("outra", "2")), {"loja"})


# ---- the ladder ---------------------------------------------------------------------------------------


def finding(kind: str) -> Any:
    from watchdog.model import Finding, Severity

    return Finding(kind, "evolution:loja", Severity.CRITICAL, kind)


@pytest.mark.parametrize(
    ("kind", "key"), [(E2E_NOT_RECEIVED, "service:evolution"), (E2E_NO_REPLY, "service:dify")]
)
def test_a_failed_heartbeat_is_a_service_fault_confirmed_like_a_probe(kind: str, key: str) -> None:
    attribution = Attribution(confirm_cycles=3)
    for cycle in (1, 2, 3):
        [problem] = attribution.cycle([finding(kind)], {}, now=float(cycle))
        assert (problem.key, problem.start, problem.confirmed) == (key, Level.SERVICE, cycle == 3)
    # with a second, independent source it is confirmed at once
    other = "inbound_stopped" if kind == E2E_NOT_RECEIVED else "dify_down"
    [problem] = Attribution(confirm_cycles=3).cycle([finding(kind), finding(other)], {}, now=1.0)
    assert problem.confirmed


@pytest.mark.parametrize("kind", [E2E_NOT_DELIVERED, E2E_SLOW])
def test_a_slow_or_undelivered_heartbeat_is_reported_never_repaired(kind: str) -> None:
    assert Attribution(confirm_cycles=1).cycle([finding(kind)], {}, now=1.0) == []


@pytest.mark.parametrize(
    ("integration", "key"),
    [
        ("dify", "service:dify"),
        ("unknown", "service:dify"),  # no way to tell: the bot is Dify's as before the integrations
        ("typebot", "human:e2e_no_reply:evolution:loja"),
        ("n8n", "human:e2e_no_reply:evolution:loja"),
    ],
)
def test_an_unanswered_heartbeat_restarts_dify_only_when_dify_is_the_bot(integration: str, key: str) -> None:
    """Another integration's backend is not the watchdog's to restart: a person is paged instead."""
    unanswered = dataclasses.replace(finding(E2E_NO_REPLY), evidence={"integration": integration})
    [problem] = problems_from([unanswered])
    assert problem.key == key
