"""ConversationMonitor on a fake clock: metrics per kind, stalled contacts, quiet instances."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from watchdog.clock import FakeClock
from watchdog.metrics import Metrics
from watchdog.signals.conversations import ConversationMonitor
from watchdog.signals.webhook import parse_envelope


def envelope(
    event: str, instance: str, jid: str, msg_id: str, *, from_me: bool = False, media: bool = False
) -> Any:
    return parse_envelope(
        {
            "event": event,
            "instance": instance,
            "data": {
                "key": {"remoteJid": jid, "fromMe": from_me, "id": msg_id},
                "messageType": "imageMessage" if media else "conversation",
                "source": "unknown" if from_me else "android",
            },
        }
    )


def jid(n: int) -> str:
    return f"55119{n:08d}@s.whatsapp.net"


def setup(clock: FakeClock) -> tuple[ConversationMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    monitor = ConversationMonitor(clock, Metrics(registry), threshold=5, stall_seconds=30, max_pending=1000)
    return monitor, registry


def test_turnaround_histogram_and_breaches_per_kind(clock: FakeClock) -> None:
    monitor, registry = setup(clock)
    for n, (media, delay) in enumerate([(False, 2), (False, 8), (True, 8)]):
        monitor.ingest(envelope("messages.upsert", "loja", jid(n), f"in{n}", media=media))
        clock.advance(delay)
        monitor.ingest(envelope("send.message", "loja", jid(n), f"out{n}", from_me=True))
    value = registry.get_sample_value
    assert value("watchdog_turnaround_seconds_count", {"instance": "loja", "kind": "text"}) == 2
    assert value("watchdog_turnaround_seconds_sum", {"instance": "loja", "kind": "text"}) == 10
    assert value("watchdog_turnaround_seconds_bucket", {"instance": "loja", "kind": "text", "le": "5.0"}) == 1
    assert value("watchdog_turnaround_breaches_total", {"instance": "loja", "kind": "text"}) == 1
    assert value("watchdog_turnaround_breaches_total", {"instance": "loja", "kind": "media"}) == 1


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
            "watchdog_stalled_conversations_total", {"instance": "loja", "kind": "text"}
        )
        == 3
    )
    monitor.ingest(envelope("send.message", "loja", jid(0), "out0", from_me=True))
    assert sorted(f.kind for f in monitor.findings()) == ["stalled_contact", "stalled_contact"]


def test_inbound_stopped_on_one_instance_while_others_receive(clock: FakeClock) -> None:
    monitor, _ = setup(clock)
    for n in range(10):
        for instance in ("loja", "suporte"):
            monitor.ingest(envelope("messages.upsert", instance, jid(n), f"{instance}-{n}"))
            monitor.ingest(envelope("send.message", instance, jid(n), f"{instance}-r{n}", from_me=True))
        clock.advance(2)
    for n in range(10, 40):  # only suporte keeps receiving
        monitor.ingest(envelope("messages.upsert", "suporte", jid(n), f"suporte-{n}"))
        monitor.ingest(envelope("send.message", "suporte", jid(n), f"suporte-r{n}", from_me=True))
        clock.advance(2)
    quiet = [f for f in monitor.findings() if f.kind == "inbound_stopped"]
    assert [f.target for f in quiet] == ["evolution:loja"]


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
