"""The leader lease as a pure state machine: it is told the clock and Redis's answers, and says what to
ask next and whether this replica may act now. No I/O here (see replicas/store.py for Redis).

Safety first: the lease counts from the moment the request was *sent*, ends a margin before Redis lets
it expire, and any failure to get an answer ends it at once (never act when unsure).
Liveness: a follower tries every `period` (a third of the lease), so a dead leader is replaced within
`ttl + period`, inside two lease periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

SAFETY_FRACTION = 0.1  # stop acting this share of the lease before Redis would let it expire


class Call(Enum):
    ACQUIRE = "acquire"  # SET key me NX PX ttl
    RENEW = "renew"  # compare-and-set: PEXPIRE only while the key still holds me


class Change(Enum):
    ELECTED = "elected"  # this replica now leads
    DEPOSED = "deposed"  # it led and no longer does
    UNREACHABLE = "unreachable"  # the lease store stopped answering
    REACHABLE = "reachable"  # it answers again


@dataclass
class LeaseMachine:
    me: str
    ttl: float  # seconds
    valid_until: float | None = None  # monotonic; None = not leading
    holder: str | None = None  # who holds the lease according to the last answer
    error: str | None = None  # the last failure to reach the store; None once it answers
    since: float | None = None  # monotonic time this replica began to lead
    reported: bool = False  # leading as last reported to the caller (a lapse renewed in time is no change)

    @property
    def period(self) -> float:
        """How often to renew (leader) or try to acquire (follower)."""
        return self.ttl / 3

    def leading(self, now: float) -> bool:
        return self.valid_until is not None and now < self.valid_until

    def next_call(self, now: float) -> Call:
        """Renew while the key is believed to hold us (even a lapsed local lease: renewal is a CAS)."""
        return Call.RENEW if self.holder == self.me else Call.ACQUIRE

    def answered(self, *, sent_at: float, now: float, held: bool, holder: str | None) -> list[Change]:
        """Redis answered a call sent at `sent_at`: `held` says whether the lease is ours for another ttl."""
        changes = self._reached()
        if held:
            self.holder = self.me
            self.valid_until = sent_at + self.ttl * (1 - SAFETY_FRACTION)
            if not self.leading(now):  # the answer came too late to be of use
                self.valid_until = None
        else:
            self.holder = holder
            self.valid_until = None
        return changes + self._transition(now)

    def failed(self, now: float, error: str) -> list[Change]:
        """No answer: the lease may have passed to another replica, so stop acting now."""
        changes = [Change.UNREACHABLE] if self.error is None else []
        self.error = error
        self.valid_until = None
        if self.holder != self.me:  # when it was ours, try to renew it first: nobody else can take it yet
            self.holder = None
        return changes + self._transition(now)

    def released(self, now: float) -> list[Change]:
        """We gave the lease up on purpose (shutdown)."""
        self.valid_until = None
        self.holder = None
        return self._transition(now)

    def _reached(self) -> list[Change]:
        if self.error is None:
            return []
        self.error = None
        return [Change.REACHABLE]

    def _transition(self, now: float) -> list[Change]:
        leading, was = self.leading(now), self.reported
        self.reported = leading
        if leading and not was:
            self.since = now
            return [Change.ELECTED]
        if was and not leading:
            self.since = None
            return [Change.DEPOSED]
        return []
