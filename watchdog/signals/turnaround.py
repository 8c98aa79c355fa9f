"""Turnaround tracking: time from a customer's message to the bot's next reply, per (instance, contact).

Pure: every call takes the time from the injected clock; no timers here. The caller asks
`next_deadline()` and arms one timer, then collects `due_stalls()` when it fires, so a stall is
raised at the moment it happens, not at the next probe tick.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from watchdog.clock import Clock
from watchdog.model import contact_id

TEXT, MEDIA = "text", "media"
BOT, HUMAN = "bot", "human"


@dataclass
class PendingTurn:
    instance: str
    remote_jid: str
    kind: str
    first_at: float  # monotonic time of the first unanswered message of the burst
    messages: int = 1
    stalled: bool = False

    @property
    def contact(self) -> str:
        return contact_id(self.remote_jid)


@dataclass(frozen=True)
class Turn:
    """One answered turn; `seconds` is on the watchdog's clock, never Evolution's `date_time`."""

    instance: str
    contact: str
    kind: str
    seconds: float
    replied_by: str  # bot | human
    messages: int
    breach: bool
    was_stalled: bool


@dataclass(frozen=True)
class Stall:
    instance: str
    contact: str
    remote_jid: str = field(repr=False)
    kind: str
    waiting_seconds: float
    messages: int


class RecentIds:
    """A bounded memory of message ids, so retried webhook deliveries count once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, message_id: str) -> bool:
        """True when this id was seen before; remembers it otherwise."""
        if not message_id:
            return False
        if message_id in self._ids:
            return True
        self._ids[message_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)
        return False


class TurnaroundTracker:
    def __init__(
        self,
        clock: Clock,
        *,
        threshold_seconds: float,
        stall_seconds: float,
        max_pending: int = 100_000,
        remembered_ids: int = 50_000,
    ) -> None:
        self.clock = clock
        self.threshold = threshold_seconds
        self.stall_seconds = stall_seconds
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[str, str], PendingTurn] = OrderedDict()
        # Turns not yet reported as stalled, oldest first (insertion order is time order).
        self._unflagged: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._ids = RecentIds(remembered_ids)
        self.evicted = 0
        self.duplicates = 0
        self.stalled_count = 0  # kept as turns change, so the webhook hot path never scans the table
        self.abandoned = 0  # stalled waits closed by a repair rather than by a reply

    def inbound(self, instance: str, remote_jid: str, message_id: str, kind: str) -> None:
        """A customer wrote. A burst before the reply is one turn, timed from its first message."""
        if self._ids.seen(message_id):
            self.duplicates += 1
            return
        key = (instance, remote_jid)
        turn = self._pending.get(key)
        if turn is not None:
            turn.messages += 1
            if kind == MEDIA:
                turn.kind = MEDIA
            return
        if len(self._pending) >= self.max_pending:
            oldest, dropped = self._pending.popitem(last=False)
            self._unflagged.pop(oldest, None)
            self.stalled_count -= dropped.stalled
            self.evicted += 1
        self._pending[key] = PendingTurn(instance, remote_jid, kind, self.clock.monotonic())
        self._unflagged[key] = None

    def reply(self, instance: str, remote_jid: str, message_id: str, *, replied_by: str) -> Turn | None:
        """The bot (or a human on the phone) answered; returns the finished turn, if one was waiting."""
        if self._ids.seen(message_id):
            self.duplicates += 1
            return None
        turn = self._pending.pop((instance, remote_jid), None)
        self._unflagged.pop((instance, remote_jid), None)
        if turn is None:
            return None
        self.stalled_count -= turn.stalled
        seconds = max(0.0, self.clock.monotonic() - turn.first_at)
        return Turn(
            instance=instance,
            contact=turn.contact,
            kind=turn.kind,
            seconds=seconds,
            replied_by=replied_by,
            messages=turn.messages,
            breach=replied_by == BOT and seconds > self.threshold,
            was_stalled=turn.stalled,
        )

    def due_stalls(self) -> list[Stall]:
        """Turns that just passed the stall limit; each is reported once."""
        now = self.clock.monotonic()
        due = []
        while self._unflagged:
            key = next(iter(self._unflagged))
            turn = self._pending[key]
            waited = now - turn.first_at
            if waited < self.stall_seconds:
                break
            del self._unflagged[key]
            turn.stalled = True
            self.stalled_count += 1
            due.append(Stall(turn.instance, turn.contact, turn.remote_jid, turn.kind, waited, turn.messages))
        return due

    def next_deadline(self) -> float | None:
        """Monotonic time when the next unreported stall falls due, or None."""
        if not self._unflagged:
            return None
        return self._pending[next(iter(self._unflagged))].first_at + self.stall_seconds

    def drop_stalled(self, instance: str | None = None, remote_jid: str | None = None) -> int:
        """A repair answered for these waits (the turns it could not save end here); returns how many."""
        keys = [
            key
            for key, turn in self._pending.items()
            if turn.stalled and instance in (None, key[0]) and remote_jid in (None, key[1])
        ]
        for key in keys:
            del self._pending[key]
        self.stalled_count -= len(keys)
        self.abandoned += len(keys)
        return len(keys)

    def pending(self) -> list[PendingTurn]:
        return list(self._pending.values())

    def stalled(self) -> list[PendingTurn]:
        return [t for t in self._pending.values() if t.stalled]
