"""TurnaroundTracker on a fake clock: bursts, human replies, duplicates, stalls, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.clock import FakeClock
from watchdog.signals.turnaround import BOT, HUMAN, MEDIA, TEXT, TurnaroundTracker

ANA = "5511987600001@s.whatsapp.net"
BIA = "5511987600002@s.whatsapp.net"
KEY = b"test-contact-key-0123"


def tracker(clock: FakeClock, **kw: int) -> TurnaroundTracker:
    return TurnaroundTracker(clock, contact_key=KEY, threshold_seconds=5, stall_seconds=30, **kw)


def test_turn_is_measured_on_the_watchdog_clock(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(2.5)
    turn = t.reply("loja", ANA, "r1", replied_by=BOT)
    assert turn is not None
    assert (turn.seconds, turn.kind, turn.breach, turn.messages) == (2.5, TEXT, False, 1)
    assert ANA.split("@")[0] not in repr(turn) and turn.contact.startswith("c-")


def test_slow_reply_is_a_breach_and_a_burst_counts_once_from_the_first(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(2)
    t.inbound("loja", ANA, "m2", MEDIA)
    clock.advance(4)
    turn = t.reply("loja", ANA, "r1", replied_by=BOT)
    assert turn is not None and (turn.seconds, turn.kind, turn.messages, turn.breach) == (6, MEDIA, 2, True)
    assert t.reply("loja", ANA, "r2", replied_by=BOT) is None  # a second reply has nothing to end


def test_human_reply_ends_the_wait_and_is_never_a_breach(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(9)
    turn = t.reply("loja", ANA, "p1", replied_by=HUMAN)
    assert turn is not None and turn.replied_by == HUMAN and not turn.breach
    assert t.pending() == []


def test_duplicate_deliveries_count_once(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(1)
    first = t.reply("loja", ANA, "r1", replied_by=BOT)
    t.inbound("loja", ANA, "m2", TEXT)
    assert t.reply("loja", ANA, "r1", replied_by=BOT) is None  # the retried reply must not end m2's turn
    assert first is not None and first.messages == 1 and t.duplicates == 2
    assert len(t.pending()) == 1


def test_stall_falls_due_exactly_at_the_limit_and_is_reported_once(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(10)
    t.inbound("loja", BIA, "m2", MEDIA)
    assert t.next_deadline() == clock.monotonic() - 10 + 30
    clock.advance(19.9)
    assert t.due_stalls() == []
    clock.advance(0.1)
    stalls = t.due_stalls()
    assert [(s.instance, s.waiting_seconds) for s in stalls] == [("loja", 30)]
    assert t.due_stalls() == [] and t.next_deadline() == clock.monotonic() + 10
    clock.advance(10)
    assert [s.kind for s in t.due_stalls()] == [MEDIA]
    assert t.next_deadline() is None and len(t.stalled()) == 2
    late = t.reply("loja", ANA, "r1", replied_by=BOT)
    assert late is not None and late.was_stalled and late.seconds == pytest.approx(40)


def test_pending_table_is_bounded_and_evictions_are_counted(clock: FakeClock) -> None:
    t = tracker(clock, max_pending=3)
    for i in range(5):
        t.inbound("loja", f"55119{i:08d}@s.whatsapp.net", f"m{i}", TEXT)
    assert len(t.pending()) == 3 and t.evicted == 2
    assert t.reply("loja", "5511900000000@s.whatsapp.net", "r", replied_by=BOT) is None


Event = tuple[str, int, int, float]  # (what, contact, message id, seconds to advance first)
events = st.lists(
    st.tuples(
        st.sampled_from(["in-text", "in-media", "bot", "human"]),
        st.integers(0, 3),
        st.integers(0, 12),
        st.floats(0, 40, allow_nan=False),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_random_interleavings_never_go_negative_or_double_count(sequence: list[Event]) -> None:
    clock = FakeClock()
    t = TurnaroundTracker(
        clock, contact_key=KEY, threshold_seconds=5, stall_seconds=30, max_pending=3, remembered_ids=8
    )
    inbound_times: dict[int, float] = {}
    turns = 0
    for what, contact, msg, advance in sequence:
        clock.advance(advance)
        jid = f"55119{contact:08d}@s.whatsapp.net"
        if what.startswith("in"):
            t.inbound("loja", jid, f"in-{msg}", MEDIA if what == "in-media" else TEXT)
            inbound_times.setdefault(contact, clock.monotonic())
        else:
            turn = t.reply("loja", jid, f"out-{msg}", replied_by=BOT if what == "bot" else HUMAN)
            if turn is not None:
                turns += 1
                assert 0 <= turn.seconds <= clock.monotonic() - inbound_times[contact]
                assert turn.messages >= 1
            inbound_times.pop(contact, None) if turn is not None else None
        assert len(t.pending()) <= 3
        for stall in t.due_stalls():
            assert stall.waiting_seconds >= 30
        assert t.stalled_count == len(t.stalled())
    assert turns + len(t.pending()) + t.evicted <= len([e for e in sequence if e[0].startswith("in")])


def test_a_repair_closes_only_the_stalled_waits_it_covered(clock: FakeClock) -> None:
    t = tracker(clock)
    t.inbound("loja", ANA, "m1", TEXT)
    t.inbound("suporte", BIA, "m2", TEXT)
    clock.advance(30)
    t.due_stalls()
    t.inbound("loja", "5511900000009@s.whatsapp.net", "m3", TEXT)  # waiting, not stalled
    assert t.drop_stalled("loja", ANA) == 1
    assert t.drop_stalled("loja") == 0  # the other loja wait is not stalled
    assert t.drop_stalled(None) == 1 and t.stalled_count == 0 and t.abandoned == 2
    assert [p.remote_jid for p in t.pending()] == ["5511900000009@s.whatsapp.net"]


def test_counts_per_instance_and_the_oldest_turn_goes_first_even_when_stalled(clock: FakeClock) -> None:
    t = tracker(clock, max_pending=3)
    t.inbound("loja", ANA, "m1", TEXT)
    clock.advance(30)
    assert len(t.due_stalls()) == 1
    t.inbound("suporte", BIA, "m2", MEDIA)
    t.inbound("suporte", ANA, "m3", TEXT)
    t.inbound("suporte", ANA, "m4", TEXT)  # a burst: still one turn
    assert t.counts() == ({"loja": 1, "suporte": 2}, {"loja": 1})
    assert [(p.instance, p.stalled, p.messages) for p in t.pending()] == [
        ("loja", True, 1),
        ("suporte", False, 1),
        ("suporte", False, 2),
    ]
    t.inbound("loja", BIA, "m5", TEXT)  # full: the stalled loja wait, the oldest, is evicted
    assert t.evicted == 1 and t.stalled_count == 0 and t.stalled() == []
    assert t.counts() == ({"suporte": 2, "loja": 1}, {})
    turn = t.reply("suporte", BIA, "r1", replied_by=BOT)
    assert turn is not None and (turn.kind, turn.messages, turn.was_stalled) == (MEDIA, 1, False)
