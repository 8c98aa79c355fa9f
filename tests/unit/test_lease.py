"""The leader lease state machine, driven by a fake clock and scripted Redis answers."""

from __future__ import annotations

import pytest

from watchdog.clock import FakeClock
from watchdog.replicas.lease import SAFETY_FRACTION, Call, Change, LeaseMachine

TTL = 15.0


def elect(machine: LeaseMachine, clock: FakeClock) -> list[Change]:
    now = clock.monotonic()
    return machine.answered(sent_at=now, now=now, held=True, holder=machine.me)


def test_a_follower_acquires_then_renews_and_leads_until_just_before_expiry(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    assert machine.next_call(clock.monotonic()) is Call.ACQUIRE
    assert not machine.leading(clock.monotonic())
    assert elect(machine, clock) == [Change.ELECTED]
    assert machine.next_call(clock.monotonic()) is Call.RENEW
    clock.advance(TTL * (1 - SAFETY_FRACTION) - 0.01)
    assert machine.leading(clock.monotonic())
    clock.advance(0.02)
    assert not machine.leading(clock.monotonic())  # stops acting before Redis would let the key go


def test_the_lease_counts_from_when_the_request_was_sent_not_answered(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    sent = clock.monotonic()
    clock.advance(10)  # a slow answer
    machine.answered(sent_at=sent, now=clock.monotonic(), held=True, holder="a")
    clock.advance(TTL * (1 - SAFETY_FRACTION) - 10 + 0.01)
    assert not machine.leading(clock.monotonic())


def test_an_answer_later_than_the_lease_does_not_elect(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    sent = clock.monotonic()
    clock.advance(TTL)
    assert machine.answered(sent_at=sent, now=clock.monotonic(), held=True, holder="a") == []
    assert not machine.leading(clock.monotonic())
    assert machine.next_call(clock.monotonic()) is Call.RENEW  # the key may still hold us: renew it


def test_a_renewal_refused_deposes_and_names_the_new_holder(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    elect(machine, clock)
    clock.advance(machine.period)
    now = clock.monotonic()
    assert machine.answered(sent_at=now, now=now, held=False, holder="b") == [Change.DEPOSED]
    assert machine.holder == "b" and machine.next_call(now) is Call.ACQUIRE


def test_a_store_failure_stops_acting_at_once_and_is_reported_once(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    elect(machine, clock)
    clock.advance(1)
    changes = machine.failed(clock.monotonic(), "connection refused")
    assert changes == [Change.UNREACHABLE, Change.DEPOSED]
    assert not machine.leading(clock.monotonic()) and machine.error == "connection refused"
    assert machine.next_call(clock.monotonic()) is Call.RENEW  # our key: nobody else can take it yet
    clock.advance(machine.period)
    assert machine.failed(clock.monotonic(), "connection refused") == []
    now = clock.monotonic()
    assert machine.answered(sent_at=now, now=now, held=True, holder="a") == [
        Change.REACHABLE,
        Change.ELECTED,
    ]
    assert machine.error is None


def test_a_follower_failing_forgets_the_holder(clock: FakeClock) -> None:
    machine = LeaseMachine("b", TTL)
    now = clock.monotonic()
    machine.answered(sent_at=now, now=now, held=False, holder="a")
    assert machine.failed(now, "timeout") == [Change.UNREACHABLE]
    assert machine.holder is None and machine.next_call(now) is Call.ACQUIRE


def test_a_lapse_renewed_in_time_is_no_change_but_a_lapse_then_refusal_deposes(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    elect(machine, clock)
    clock.advance(TTL)  # the loop was starved: the local lease lapsed
    assert not machine.leading(clock.monotonic())
    assert elect(machine, clock) == []  # the CAS renewal proved the key was still ours
    clock.advance(TTL)
    now = clock.monotonic()
    assert machine.answered(sent_at=now, now=now, held=False, holder=None) == [Change.DEPOSED]


def test_release_deposes_and_since_tracks_the_term(clock: FakeClock) -> None:
    machine = LeaseMachine("a", TTL)
    elect(machine, clock)
    assert machine.since == clock.monotonic()
    clock.advance(2)
    elect(machine, clock)
    assert machine.since == clock.monotonic() - 2  # a renewal keeps the term
    assert machine.released(clock.monotonic()) == [Change.DEPOSED]
    assert machine.since is None and machine.holder is None


@pytest.mark.parametrize("ttl", [1.0, 15.0, 600.0])
def test_a_dead_leader_is_replaced_within_two_lease_periods(ttl: float) -> None:
    """The follower polls every period; the leader's key lasts ttl from its last renewal."""
    clock = FakeClock()
    leader, follower = LeaseMachine("a", ttl), LeaseMachine("b", ttl)
    expires_at = clock.monotonic() + ttl  # the leader renewed just now, then died
    leader.answered(sent_at=clock.monotonic(), now=clock.monotonic(), held=True, holder="a")
    died_at = clock.monotonic()
    while True:
        now = clock.monotonic()
        free = now >= expires_at
        changes = follower.answered(sent_at=now, now=now, held=free, holder=None if free else "a")
        if Change.ELECTED in changes:
            break
        clock.advance(follower.period)
    assert clock.monotonic() - died_at <= 2 * ttl
    assert not leader.leading(clock.monotonic())  # the old leader's own view lapsed before that
