"""ConversationMonitor on a fake clock: metrics per kind, stalled contacts, quiet instances."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from watchdog.clock import FakeClock
from watchdog.metrics import Metrics
from watchdog.model import ProbeResult, contact_id
from watchdog.signals.conversations import ConversationMonitor
from watchdog.signals.webhook import parse_envelope

KEY = b"test-contact-key-0123"


def envelope(
    event: str,
    instance: str,
    jid: str,
    msg_id: str,
    *,
    from_me: bool = False,
    media: bool = False,
    mtype: str = "conversation",
) -> Any:
    return parse_envelope(
        {
            "event": event,
            "instance": instance,
            "data": {
                "key": {"remoteJid": jid, "fromMe": from_me, "id": msg_id},
                "messageType": "imageMessage" if media else mtype,
                "source": "unknown" if from_me else "android",
            },
        }
    )


def jid(n: int) -> str:
    return f"55119{n:08d}@s.whatsapp.net"


def setup(clock: FakeClock) -> tuple[ConversationMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    monitor = ConversationMonitor(
        clock, Metrics(registry), contact_key=KEY, threshold=5, stall_seconds=30, max_pending=1000
    )
    return monitor, registry


def test_turnaround_histogram_and_breaches_per_kind(clock: FakeClock) -> None:
    monitor, registry = setup(clock)
    for n, (media, delay) in enumerate([(False, 2), (False, 8), (True, 8)]):
        monitor.ingest(envelope("messages.upsert", "loja", jid(n), f"in{n}", media=media))
        clock.advance(delay)
        monitor.ingest(envelope("send.message", "loja", jid(n), f"out{n}", from_me=True))

    def value(name: str, kind: str, **more: str) -> float | None:
        labels = {"instance": "loja", "kind": kind, "integration": "unknown", **more}
        return registry.get_sample_value(name, labels)

    assert value("watchdog_turnaround_seconds_count", "text") == 2
    assert value("watchdog_turnaround_seconds_sum", "text") == 10
    assert value("watchdog_turnaround_seconds_bucket", "text", le="5.0") == 1
    assert value("watchdog_turnaround_breaches_total", "text") == 1
    assert value("watchdog_turnaround_breaches_total", "media") == 1


def test_stalled_contacts_become_findings_with_the_jid_kept_private(clock: FakeClock) -> None:
    monitor, registry = setup(clock)
    for n in range(3):
        monitor.ingest(envelope("messages.upsert", "loja", jid(n), f"in{n}"))
    clock.advance(30)
    assert len(monitor.collect_stalls()) == 3
    findings = monitor.findings()
    kinds = sorted(f.kind for f in findings)
    assert kinds == ["instance_stalled", "stalled_contact", "stalled_contact", "stalled_contact"]
    contact = next(f for f in findings if f.kind == "stalled_contact")
    assert contact.subject.endswith("@s.whatsapp.net") and "5511" not in str(contact.as_dict())
    assert (
        registry.get_sample_value(
            "watchdog_stalled_conversations_total",
            {"instance": "loja", "kind": "text", "integration": "unknown"},
        )
        == 3
    )
    monitor.ingest(envelope("send.message", "loja", jid(0), "out0", from_me=True))
    assert sorted(f.kind for f in monitor.findings()) == ["stalled_contact", "stalled_contact"]


def write(monitor: ConversationMonitor, instance: str, n: int, *, mtype: str = "conversation") -> None:
    """Customer n writes on `instance`, and the owner answers from the phone: only inbound is at stake."""
    monitor.ingest(envelope("messages.upsert", instance, jid(n), f"{instance}-{n}", mtype=mtype))
    monitor.ingest(envelope("messages.upsert", instance, jid(n), f"{instance}-r{n}", from_me=True))


def quiet(monitor: ConversationMonitor) -> list[str]:
    return [f.target for f in monitor.findings() if f.kind == "inbound_stopped"]


def test_one_instance_that_stops_is_judged_against_its_own_traffic(clock: FakeClock) -> None:
    monitor, _ = setup(clock)  # stall 30 s; every 2 s: quiet after max(30, 10 x 2) = 30 s
    for n in range(20):
        write(monitor, "loja", n)
        clock.advance(2)
    clock.advance(27)  # 29 s since the last message
    assert quiet(monitor) == []
    clock.advance(2)
    [finding] = [f for f in monitor.findings() if f.kind == "inbound_stopped"]
    assert finding.target == "evolution:loja" and finding.evidence["usual_gap_seconds"] == 2.0
    assert "other instance" not in finding.summary
    write(monitor, "loja", 20)  # inbound flows again
    assert quiet(monitor) == []


def test_a_short_run_of_messages_then_silence_is_not_judged_alone(clock: FakeClock) -> None:
    """One conversation and then nobody is ordinary on a quiet bot: alone, the record must be longer."""
    monitor, _ = setup(clock)
    for n in range(19):
        write(monitor, "loja", n)
        clock.advance(2)
    clock.advance(3600)
    assert quiet(monitor) == []
    monitor, _ = setup(clock)
    for n in range(10):  # beside an instance that receives, five are enough
        write(monitor, "loja", n)
        write(monitor, "suporte", n)
        clock.advance(2)
    for n in range(10, 26):
        write(monitor, "suporte", n)
        clock.advance(2)
    assert quiet(monitor) == ["evolution:loja"]


def test_traffic_that_tapers_off_is_not_flagged(clock: FakeClock) -> None:
    """The evening: every gap twice the one before. The moving average keeps up (the next gap is about
    six of them), so no silence between two messages is ever unusual."""
    monitor, _ = setup(clock)
    for n in range(6):
        write(monitor, "loja", n)
        clock.advance(2)
    gap = 2.0
    for n in range(6, 20):
        gap *= 2
        clock.advance(gap - 2.01)  # just before the next message
        assert quiet(monitor) == [], f"flagged {gap - 0.01:.0f}s into a gap"
        clock.advance(0.01)
        write(monitor, "loja", n)
        clock.advance(2)


def test_many_instances_where_one_stops(clock: FakeClock) -> None:
    monitor, _ = setup(clock)
    for n in range(10):
        for instance in ("loja", "suporte", "vendas"):
            write(monitor, instance, n)
        clock.advance(2)
    for n in range(10, 40):  # loja stops; the others keep receiving
        write(monitor, "suporte", n)
        write(monitor, "vendas", n)
        clock.advance(2)
    [finding] = [f for f in monitor.findings() if f.kind == "inbound_stopped"]
    assert finding.target == "evolution:loja" and finding.evidence["instances_receiving"] == 2
    assert "while 2 other instance(s) still receive" in finding.summary


def test_many_instances_that_all_stop_together_are_a_quiet_hour_not_dead_processors(
    clock: FakeClock,
) -> None:
    monitor, _ = setup(clock)
    for n in range(10):
        for instance in ("loja", "suporte", "vendas"):
            write(monitor, instance, n)
            clock.advance(0.5)
        clock.advance(0.5)
    for _ in range(20):
        clock.advance(30)
        assert quiet(monitor) == []
    # one of them wakes up: the others' silence is unusual again (they did not stop with the traffic)
    for n in range(10, 12):
        write(monitor, "suporte", n)
        clock.advance(1)
    assert quiet(monitor) == ["evolution:loja", "evolution:vendas"]


def test_an_instance_quiet_since_long_before_is_no_witness(clock: FakeClock) -> None:
    monitor, _ = setup(clock)
    for n in range(20):
        write(monitor, "vendas", n)
        clock.advance(2)
    clock.advance(3600)  # vendas went quiet an hour ago (and stays so)
    for n in range(20):
        write(monitor, "loja", n)
        clock.advance(2)
    clock.advance(27)
    assert quiet(monitor) == ["evolution:vendas"]  # while loja receives
    clock.advance(2)
    assert quiet(monitor) == ["evolution:loja", "evolution:vendas"]  # each judged as if alone


def test_a_service_restart_answers_the_silence_once(clock: FakeClock) -> None:
    """The restart that a silence led to ends it: the instance learns its traffic anew, so a silence that
    goes on (nobody writes at night) is not restarted again and then paged."""
    monitor, _ = setup(clock)
    for n in range(20):
        write(monitor, "loja", n)
        clock.advance(2)
    clock.advance(60)
    assert quiet(monitor) == ["evolution:loja"]
    monitor.repaired(instance="loja")  # an instance restart is not the processor's repair
    assert quiet(monitor) == ["evolution:loja"]
    monitor.repaired(instance=None)
    assert quiet(monitor) == [] and monitor.inbound_within(62)  # the last message still counts as such
    clock.advance(3600)
    assert quiet(monitor) == []  # the silence that goes on is not judged again ...
    for n in range(20, 40):  # ... until loja has learned its traffic afresh (not from the silence's gap)
        write(monitor, "loja", n)
        clock.advance(2)
    clock.advance(29)
    assert quiet(monitor) == ["evolution:loja"]


def test_a_sticker_or_video_note_counts_as_inbound_but_opens_no_wait(clock: FakeClock) -> None:
    """Upstream's bot never answers them (their content is undefined): no stall can come of them."""
    monitor, registry = setup(clock)
    for n, mtype in enumerate(["stickerMessage", "ptvMessage"] * 10):
        monitor.ingest(envelope("messages.upsert", "loja", jid(n), f"in{n}", mtype=mtype))
        clock.advance(2)
    assert monitor.tracker.pending() == [] and monitor.next_deadline() is None
    clock.advance(40)
    assert monitor.collect_stalls() == []
    assert [f.kind for f in monitor.findings()] == ["inbound_stopped"]  # they were traffic all the same
    monitor.ingest(envelope("messages.upsert", "loja", jid(9), "in9", mtype="imageMessage"))
    monitor.ingest(envelope("messages.upsert", "loja", jid(9), "in10", mtype="stickerMessage"))
    [waiting] = monitor.tracker.pending()
    assert (waiting.kind, waiting.messages) == ("media", 1)
    monitor.ingest(envelope("send.message", "loja", jid(9), "out9", from_me=True))
    assert registry.get_sample_value(
        "watchdog_turnaround_seconds_count", {"instance": "loja", "kind": "media", "integration": "unknown"}
    )


def test_a_closed_instance_is_not_reported_as_quiet(clock: FakeClock) -> None:
    monitor, _ = setup(clock)
    for n in range(10):
        monitor.ingest(envelope("messages.upsert", "loja", jid(n), f"l{n}"))
        monitor.ingest(envelope("messages.upsert", "suporte", jid(n), f"s{n}"))
        clock.advance(2)
    monitor.ingest(
        parse_envelope({"event": "connection.update", "instance": "loja", "data": {"state": "close"}})
    )
    for n in range(10, 40):
        monitor.ingest(envelope("messages.upsert", "suporte", jid(n), f"s{n}"))
        clock.advance(2)
    assert not [f for f in monitor.findings() if f.kind == "inbound_stopped"]


def test_status_lists_slowest_and_stalled_by_hash(clock: FakeClock) -> None:
    monitor, _ = setup(clock)
    monitor.ingest(envelope("messages.upsert", "loja", jid(1), "a"))
    clock.advance(3)
    monitor.ingest(envelope("send.message", "loja", jid(1), "b", from_me=True))
    monitor.ingest(envelope("messages.upsert", "loja", jid(2), "c"))
    clock.advance(31)
    monitor.collect_stalls()
    status = monitor.status()
    assert status["loja"]["slowest"][0]["seconds"] == 3
    assert status["loja"]["stalled"][0]["seconds"] == 31
    assert "5511" not in str(status)


def sessions_probe(instance: str, sessions: list[tuple[str, str, float]], bots: list[str]) -> ProbeResult:
    """A sessions probe: (remoteJid, integration, updated_at) per session; enabled bots' integrations."""
    return ProbeResult(
        target=f"evolution:{instance}",
        probe="sessions",
        ok=True,
        duration=0.1,
        checked_at=0.0,
        detail="",
        data={
            "bots": [{"integration": name, "enabled": True} for name in bots],
            "sessions": [
                {"contact": contact_id(remote, key=KEY), "integration": name, "updated_at": at}
                for remote, name, at in sessions
            ],
        },
    )


def answer(
    monitor: ConversationMonitor, clock: FakeClock, n: int, instance: str = "loja", turn: int = 0
) -> None:
    monitor.ingest(envelope("messages.upsert", instance, jid(n), f"in-{instance}-{n}-{turn}"))
    clock.advance(1)
    monitor.ingest(envelope("send.message", instance, jid(n), f"out-{instance}-{n}-{turn}", from_me=True))


def test_turnaround_is_labelled_with_the_integration_holding_the_contacts_newest_session(
    clock: FakeClock,
) -> None:
    monitor, registry = setup(clock)
    monitor.learn_sessions(
        [
            sessions_probe(
                "loja",
                [(jid(0), "typebot", 10.0), (jid(0), "dify", 20.0), (jid(1), "openai", 5.0)],
                ["dify", "typebot", "openai"],
            ),
            sessions_probe("suporte", [], ["n8n"]),
        ]
    )
    for n in range(3):
        answer(monitor, clock, n)
    answer(monitor, clock, 3, "suporte")

    def count(instance: str, integration: str) -> float | None:
        labels = {"instance": instance, "kind": "text", "integration": integration}
        return registry.get_sample_value("watchdog_turnaround_seconds_count", labels)

    assert count("loja", "dify") == 1  # the newest of the contact's two sessions: what getSession hands on
    assert count("loja", "openai") == 1
    assert count("loja", "unknown") == 1  # no session read, and three integrations could have answered
    assert count("suporte", "n8n") == 1  # a new contact on an instance whose only bot is n8n
    assert [t.integration for t in monitor.recent["loja"]] == ["dify", "openai", "unknown"]


def test_a_failed_sessions_probe_keeps_what_was_known_and_a_new_read_replaces_it(clock: FakeClock) -> None:
    monitor, registry = setup(clock)
    monitor.learn_sessions([sessions_probe("loja", [(jid(0), "typebot", 1.0)], ["typebot", "dify"])])
    failed = replace(sessions_probe("loja", [], []), ok=False)
    monitor.learn_sessions([failed])
    answer(monitor, clock, 0)
    monitor.learn_sessions([sessions_probe("loja", [(jid(1), "dify", 2.0)], ["typebot", "dify"])])
    answer(monitor, clock, 0, turn=1)  # its typebot session is gone from the new read
    monitor.ingest(envelope("messages.upsert", "loja", jid(1), "late"))
    clock.advance(30)
    monitor.collect_stalls()
    labels = {"instance": "loja", "kind": "text"}
    value = registry.get_sample_value
    assert value("watchdog_turnaround_seconds_count", {**labels, "integration": "typebot"}) == 1
    assert value("watchdog_turnaround_seconds_count", {**labels, "integration": "unknown"}) == 1
    assert value("watchdog_stalled_conversations_total", {**labels, "integration": "dify"}) == 1
