"""One heartbeat's legs and its verdict, and how a webhook names the other side of a message. Pure values;
the bookkeeping across heartbeats is signals/heartbeat.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from watchdog.signals.webhook import Envelope

RECEIVED, REPLIED, DELIVERED, ROUND_TRIP = "received", "replied", "delivered", "round_trip"
LEGS = (RECEIVED, REPLIED, DELIVERED)
E2E_NOT_RECEIVED = "e2e_not_received"
E2E_NO_REPLY = "e2e_no_reply"
E2E_NOT_DELIVERED = "e2e_not_delivered"
E2E_SLOW = "e2e_slow"
HEARTBEAT_FINDING_KINDS = (E2E_NOT_RECEIVED, E2E_NO_REPLY, E2E_NOT_DELIVERED, E2E_SLOW)
NOT_OPEN = "instance_not_open"  # a failure the instance's own state explains: no finding of ours
# Nothing at all came, and no webhook of the bot instance or the prober ever reached us: webhooks not set
# up is likelier than a dead processor, and a restart would not help (docs/heartbeat.md, set it up).
UNHEARD = "no_webhooks"
OK = "ok"
# The furthest leg seen -> what failed after it.
FAILURE_AFTER = {None: E2E_NOT_RECEIVED, RECEIVED: E2E_NO_REPLY, REPLIED: E2E_NOT_DELIVERED}


def jid_user(jid: str) -> str:
    """`5511987654321:12@s.whatsapp.net` -> `5511987654321`: the number, without device or server."""
    return jid.partition("@")[0].partition(":")[0]


@dataclass
class Beat:
    """One message of the prober to one bot instance, and the legs seen since it was sent."""

    instance: str
    attempt: int
    sent_at: float  # monotonic
    sent_wall: float
    seen: dict[str, float] = field(default_factory=dict)  # leg -> monotonic time first seen
    bot_side_jid: str = field(default="", repr=False)  # the prober as the bot instance saw it (key.remoteJid)

    @property
    def furthest(self) -> str | None:
        return next((leg for leg in reversed(LEGS) if leg in self.seen), None)

    def seconds(self) -> dict[str, float]:
        """Each leg from the step before it (a missing step: from the send), and the round trip."""
        out: dict[str, float] = {}
        before = self.sent_at
        for leg in LEGS:
            if leg in self.seen:
                out[leg] = round(max(0.0, self.seen[leg] - before), 3)
                before = self.seen[leg]
        if DELIVERED in self.seen:
            out[ROUND_TRIP] = round(self.seen[DELIVERED] - self.sent_at, 3)
        return out


@dataclass(frozen=True)
class Verdict:
    instance: str
    result: str  # ok, a finding kind, NOT_OPEN or UNHEARD
    attempt: int
    legs: Mapping[str, float]
    at: float  # wall time of the send
    slow: bool = False

    @property
    def retry(self) -> bool:
        """A failed first heartbeat is sent again before it counts."""
        return self.result in FAILURE_AFTER.values() and self.attempt == 1


def from_me(envelope: Envelope) -> bool | None:
    key = envelope.data.get("key")
    from_me = key.get("fromMe") if isinstance(key, dict) else None
    return from_me if isinstance(from_me, bool) else None


def peers(envelope: Envelope) -> dict[str, str]:
    """The other side of a message, by number: `remoteJid` and (LID addressing) `remoteJidAlt`; the key ""
    holds `remoteJid` itself. Empty for groups and malformed keys (the conversation parser judges them)."""
    key = envelope.data.get("key")
    remote = key.get("remoteJid") if isinstance(key, dict) else None
    if not isinstance(key, dict) or not isinstance(remote, str) or not remote or remote.endswith("@g.us"):
        return {}
    alt = key.get("remoteJidAlt")
    numbers = {jid_user(jid) for jid in (remote, alt) if isinstance(jid, str) and jid}
    return {number: remote for number in numbers} | {"": remote}
