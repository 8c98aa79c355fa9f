"""Turnaround tracking: time from a customer's message to the bot's next reply, per (instance, contact).

Pure: every call takes the time from the injected clock; no timers here. The caller asks
`next_deadline()` and arms one timer, then collects `due_stalls()` when it fires, so a stall is
raised at the moment it happens, not at the next probe tick.

The table holds up to WATCHDOG_MAX_PENDING (100,000) turns, so an entry is small: one string key
("instance NUL remoteJid") mapping to the float time of the first message, in one of two ordered
tables (waiting, then stalled: both in arrival order, and every stalled turn is older than every
waiting one, so the oldest turn is always at a front). The rare extras (a burst of several messages,
media) live in side tables; `PendingTurn` objects are built only when someone reads the table.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from watchdog.clock import Clock
from watchdog.model import contact_id

TEXT, MEDIA = "text", "media"
BOT, HUMAN = "bot", "human"
SEP = "\x00"  # between instance and remoteJid in a key; never in an instance name


@dataclass(slots=True)
class PendingTurn:
    """A view of one waiting turn, built on demand (the table itself stores no objects)."""

    instance: str
    remote_jid: str
    kind: str
    first_at: float  # monotonic time of the first unanswered message of the burst
    messages: int = 1
    stalled: bool = False
    contact_key: bytes = field(default=b"", repr=False, compare=False)

    @property
    def contact(self) -> str:
        return contact_id(self.remote_jid, key=self.contact_key)


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
    integration: str = ""  # the bot integration that answered (signals/answering.py); set by the monitor


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
        contact_key: bytes,
        threshold_seconds: float,
        stall_seconds: float,
        max_pending: int = 100_000,
        remembered_ids: int = 50_000,
    ) -> None:
        self.clock = clock
        self._contact_key = contact_key  # keys the contact ids (model.contact_id); never shown
        self.threshold = threshold_seconds
        self.stall_seconds = stall_seconds
        self.max_pending = max_pending
        # key -> monotonic time of the first unanswered message; not yet reported as stalled ...
        self._waiting: OrderedDict[str, float] = OrderedDict()
        # ... and reported as stalled; both in arrival order, all of these older than all waiting ones
        self._stalled: OrderedDict[str, float] = OrderedDict()
        self._messages: dict[str, int] = {}  # only bursts: keys with more than one message
        self._media: set[str] = set()  # only keys whose burst has media
        self._ids = RecentIds(remembered_ids)
        self.evicted = 0
        self.duplicates = 0
        self.abandoned = 0  # stalled waits closed by a repair rather than by a reply

    @property
    def stalled_count(self) -> int:
        return len(self._stalled)

    def inbound(self, instance: str, remote_jid: str, message_id: str, kind: str) -> None:
        """A customer wrote. A burst before the reply is one turn, timed from its first message."""
        if self._ids.seen(message_id):
            self.duplicates += 1
            return
        if SEP in instance:
            return  # not an Evolution instance name; it could not be told apart in a key
        key = instance + SEP + remote_jid
        if key in self._waiting or key in self._stalled:
            self._messages[key] = self._messages.get(key, 1) + 1
            if kind == MEDIA:
                self._media.add(key)
            return
        if len(self._waiting) + len(self._stalled) >= self.max_pending:
            oldest, _ = (self._stalled or self._waiting).popitem(last=False)
            self._forget(oldest)
            self.evicted += 1
        self._waiting[key] = self.clock.monotonic()
        if kind == MEDIA:
            self._media.add(key)

    def reply(self, instance: str, remote_jid: str, message_id: str, *, replied_by: str) -> Turn | None:
        """The bot (or a human on the phone) answered; returns the finished turn, if one was waiting."""
        if self._ids.seen(message_id):
            self.duplicates += 1
            return None
        key = instance + SEP + remote_jid
        was_stalled = key in self._stalled
        first_at = (self._stalled if was_stalled else self._waiting).pop(key, None)
        if first_at is None:
            return None
        kind, messages = self._forget(key)
        seconds = max(0.0, self.clock.monotonic() - first_at)
        return Turn(
            instance=instance,
            contact=contact_id(remote_jid, key=self._contact_key),
            kind=kind,
            seconds=seconds,
            replied_by=replied_by,
            messages=messages,
            breach=replied_by == BOT and seconds > self.threshold,
            was_stalled=was_stalled,
        )

    def due_stalls(self) -> list[Stall]:
        """Turns that just passed the stall limit; each is reported once."""
        now = self.clock.monotonic()
        due = []
        while self._waiting:
            key, first_at = next(iter(self._waiting.items()))
            waited = now - first_at
            if waited < self.stall_seconds:
                break
            del self._waiting[key]
            self._stalled[key] = first_at
            turn = self._view(key, first_at, stalled=True)
            due.append(Stall(turn.instance, turn.contact, turn.remote_jid, turn.kind, waited, turn.messages))
        return due

    def next_deadline(self) -> float | None:
        """Monotonic time when the next unreported stall falls due, or None."""
        if not self._waiting:
            return None
        return next(iter(self._waiting.values())) + self.stall_seconds

    def drop_stalled(self, instance: str | None = None, remote_jid: str | None = None) -> int:
        """A repair answered for these waits (the turns it could not save end here); returns how many."""
        keys = [key for key in self._stalled if _matches(key, instance, remote_jid)]
        for key in keys:
            del self._stalled[key]
            self._forget(key)
        self.abandoned += len(keys)
        return len(keys)

    def pending(self) -> list[PendingTurn]:
        """Every waiting turn, oldest first."""
        return [*self._views(self._stalled, stalled=True), *self._views(self._waiting, stalled=False)]

    def stalled(self) -> list[PendingTurn]:
        return list(self._views(self._stalled, stalled=True))

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """Pending and stalled turns per instance, without building a view of each."""
        stalled = Counter(key.partition(SEP)[0] for key in self._stalled)
        pending = Counter(key.partition(SEP)[0] for key in self._waiting) + stalled
        return pending, stalled

    def _forget(self, key: str) -> tuple[str, int]:
        """Drop a turn's extras; returns its (kind, messages)."""
        kind = MEDIA if key in self._media else TEXT
        self._media.discard(key)
        return kind, self._messages.pop(key, 1)

    def _views(self, table: OrderedDict[str, float], *, stalled: bool) -> Iterator[PendingTurn]:
        return (self._view(key, first_at, stalled=stalled) for key, first_at in table.items())

    def _view(self, key: str, first_at: float, *, stalled: bool) -> PendingTurn:
        instance, _, remote_jid = key.partition(SEP)
        kind = MEDIA if key in self._media else TEXT
        messages = self._messages.get(key, 1)
        return PendingTurn(instance, remote_jid, kind, first_at, messages, stalled, self._contact_key)


def _matches(key: str, instance: str | None, remote_jid: str | None) -> bool:
    owner, _, jid = key.partition(SEP)
    return instance in (None, owner) and remote_jid in (None, jid)
