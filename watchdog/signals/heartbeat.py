"""The end-to-end heartbeat's bookkeeping: one conversation per bot instance, its legs, its verdict.

A heartbeat is the prober's message to a bot's number. Its legs, read from the webhooks: `received` (the
bot instance's `messages.upsert` from the prober, fromMe false), `replied` (the bot instance's
`send.message` to the prober), `delivered` (the prober's `messages.upsert` from the bot's number). Every
envelope of the prober instance and every message between a bot instance and the prober is heartbeat
traffic: `observe()` says so, and the caller keeps it out of every customer figure.

Pure: times from the injected clock; the sender (probes/heartbeat.py) sends, waits for `remaining()` to
reach 0, asks `judge()`, re-sends once when the verdict asks for it, then `conclude()`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from watchdog.clock import Clock, iso
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity, instance_target
from watchdog.signals.heartbeat_legs import (
    DELIVERED,
    E2E_NO_REPLY,
    E2E_NOT_DELIVERED,
    E2E_NOT_RECEIVED,
    E2E_SLOW,
    FAILURE_AFTER,
    HEARTBEAT_FINDING_KINDS,
    NOT_OPEN,
    OK,
    RECEIVED,
    REPLIED,
    UNHEARD,
    Beat,
    Verdict,
    from_me,
    jid_user,
    peers,
)
from watchdog.signals.webhook import Envelope

__all__ = [  # the names the rest of the watchdog takes from here
    "E2E_NOT_DELIVERED",
    "E2E_NOT_RECEIVED",
    "E2E_NO_REPLY",
    "E2E_SLOW",
    "HEARTBEAT_FINDING_KINDS",
    "NOT_OPEN",
    "OK",
    "UNHEARD",
    "HeartbeatTracker",
    "Verdict",
    "jid_user",
]
MAX_ALIASES = 8
_SUMMARY = {
    E2E_NOT_RECEIVED: "the heartbeat never reached the bot instance while it says open "
    "(a dead message processor or a broken WhatsApp session)",
    E2E_NO_REPLY: "the bot instance received the heartbeat but the bot never answered (the bot/Dify path)",
    E2E_NOT_DELIVERED: "the bot answered the heartbeat but the answer never reached the prober",
}


class HeartbeatTracker:
    def __init__(
        self, clock: Clock, metrics: Metrics, *, prober: str, deadline: float, slow_after: float
    ) -> None:
        self.clock = clock
        self.metrics = metrics
        self.prober = prober
        self.deadline = deadline  # each leg must be in this long after the send
        self.slow_after = slow_after  # WATCHDOG_TURNAROUND_THRESHOLD_SECONDS, for the bot's own turn
        self.prober_number = ""  # digits, from the prober's ownerJid (fetchInstances)
        self.numbers: dict[str, str] = {}  # bot instance -> the number the heartbeat writes to
        self.last: dict[str, Verdict] = {}
        self.notes: dict[str, str] = {}  # instance ("" for all) -> why no heartbeat went out
        self._beats: dict[str, Beat] = {}
        self._findings: dict[str, Finding] = {}
        self._heard: set[str] = set()  # the prober and the bot instances a webhook came from, ever
        self._aliases: dict[str, None] = {}  # jids the bots knew the prober by (LID), newest last, bounded

    # ---- webhooks ------------------------------------------------------------------------------

    def observe(self, envelope: Envelope) -> bool:
        """True when the envelope is heartbeat traffic (the caller keeps it out of customer figures);
        a leg of an outstanding heartbeat is recorded."""
        if envelope.instance == self.prober or envelope.instance in self.numbers:
            self._heard.add(envelope.instance)
        if envelope.instance == self.prober:
            if envelope.event == "messages.upsert" and from_me(envelope) is False:
                seen_peers = peers(envelope)
                for instance, bot_number in self.numbers.items():
                    if bot_number in seen_peers:
                        self._leg(instance, DELIVERED)
            return True
        if (
            envelope.instance not in self.numbers
            or not self.prober_number
            or envelope.event not in ("messages.upsert", "send.message")
        ):
            return False
        seen_peers = peers(envelope)
        if self.prober_number not in seen_peers:
            return False
        mine = from_me(envelope)
        if envelope.event == "send.message" or mine is True:
            self._leg(envelope.instance, REPLIED)
        elif mine is False:
            beat = self._leg(envelope.instance, RECEIVED)
            if beat is not None and not beat.bot_side_jid:
                beat.bot_side_jid = seen_peers[""]  # the bot's session is keyed by key.remoteJid
                self._aliases[seen_peers[""]] = None
                if len(self._aliases) > MAX_ALIASES:
                    del self._aliases[next(iter(self._aliases))]
        return True

    def is_prober(self, jid: str) -> bool:
        """Is this contact the prober (a session the probes see on a bot instance, say)?"""
        return bool(jid) and (jid_user(jid) == self.prober_number or jid in self._aliases)

    def customers_only(self, findings: Sequence[Finding]) -> list[Finding]:
        """Contact findings about the prober's own session (busy on a heartbeat, say) are no customer's."""
        return [f for f in findings if not self.is_prober(f.subject)]

    def _leg(self, instance: str, leg: str) -> Beat | None:
        beat = self._beats.get(instance)
        if beat is None:
            return None
        beat.seen.setdefault(leg, self.clock.monotonic())
        return beat

    # ---- one heartbeat -------------------------------------------------------------------------

    def sending(self, instance: str, attempt: int) -> None:
        """Called before the send (the bot's webhooks may arrive before sendText answers)."""
        self._beats[instance] = Beat(instance, attempt, self.clock.monotonic(), self.clock.time())
        self.notes.pop(instance, None)

    def send_failed(self, instance: str, reason: str) -> None:
        """Nothing went out: that says nothing about the bot, and an earlier finding is no longer backed."""
        self._beats.pop(instance, None)
        self._findings.pop(instance, None)
        self.notes[instance] = reason

    def remaining(self, instance: str) -> float:
        """Seconds left to wait for this heartbeat; 0 once its reply was delivered or its time is up."""
        beat = self._beats.get(instance)
        if beat is None or DELIVERED in beat.seen:
            return 0.0
        return max(0.0, beat.sent_at + self.deadline - self.clock.monotonic())

    def prober_jid(self, instance: str) -> str:
        """The jid the bot instance knows the prober by (for the session reset)."""
        beat = self._beats.get(instance)
        if beat is not None and beat.bot_side_jid:
            return beat.bot_side_jid
        return f"{self.prober_number}@s.whatsapp.net"

    def judge(self, instance: str, state: str | None) -> Verdict:
        """The heartbeat's verdict; `state` is the bot instance's live connection state."""
        beat = self._beats[instance]
        furthest = beat.furthest
        legs = beat.seconds()
        if furthest == DELIVERED:
            turn = legs.get(REPLIED)
            return Verdict(
                instance, OK, beat.attempt, legs, beat.sent_wall, turn is not None and turn > self.slow_after
            )
        result = FAILURE_AFTER[furthest] if state == "open" else NOT_OPEN
        if furthest is None and not self._heard & {instance, self.prober}:
            result = UNHEARD
        return Verdict(instance, result, beat.attempt, legs, beat.sent_wall)

    def conclude(self, verdict: Verdict) -> None:
        """The heartbeat counts: metrics, and the instance's finding set or cleared."""
        self._beats.pop(verdict.instance, None)
        self.last[verdict.instance] = verdict
        instance = verdict.instance
        for leg, seconds in verdict.legs.items():
            self.metrics.e2e_seconds.labels(instance=instance, leg=leg).observe(seconds)
        self.metrics.e2e_success.labels(instance=instance).set(1 if verdict.result == OK else 0)
        if verdict.result == UNHEARD:
            self.notes[instance] = (
                f"no webhook from {instance} or the prober {self.prober} ever reached the watchdog: "
                "point their webhooks here"
            )
        finding = self._finding(verdict)
        if finding is None:
            self._findings.pop(instance, None)
        else:
            self._findings[instance] = finding

    def _finding(self, verdict: Verdict) -> Finding | None:
        evidence: dict[str, Any] = {"attempts": verdict.attempt, "legs": dict(verdict.legs)}
        target = instance_target(verdict.instance)
        if verdict.result in _SUMMARY:
            summary = f"{_SUMMARY[verdict.result]}; {verdict.attempt} tries, {self.deadline:g}s each"
            evidence["waited_seconds"] = self.deadline
            severity = Severity.WARNING if verdict.result == E2E_NOT_DELIVERED else Severity.CRITICAL
            return Finding(verdict.result, target, severity, summary, evidence)
        if verdict.slow:
            turn = verdict.legs[REPLIED]
            summary = f"the bot took {turn:.1f}s to answer the heartbeat (threshold {self.slow_after:g}s)"
            return Finding(E2E_SLOW, target, Severity.WARNING, summary, evidence)
        return None

    # ---- for the rest of the watchdog -----------------------------------------------------------

    def findings(self) -> list[Finding]:
        return [self._findings[name] for name in sorted(self._findings)]

    def repaired(self, instance: str | None) -> None:
        """A verified repair covers these instances (None: all): their findings wait for the next
        heartbeat, so an old failure never drives a second restart."""
        for name in [instance] if instance else list(self._findings):
            self._findings.pop(name, None)

    def view(self) -> dict[str, Any]:
        """Per bot instance: the last counted heartbeat, and the one under way."""
        now = self.clock.monotonic()
        instances: dict[str, Any] = {}
        for name in sorted({*self.numbers, *self.last, *self.notes} - {""}):
            entry: dict[str, Any] = {}
            verdict = self.last.get(name)
            if verdict is not None:
                entry.update(
                    result=verdict.result,
                    slow=verdict.slow,
                    sent_at=iso(verdict.at),
                    attempts=verdict.attempt,
                    legs=dict(verdict.legs),
                )
            beat = self._beats.get(name)
            if beat is not None:
                entry["under_way"] = {
                    "attempt": beat.attempt,
                    "for_seconds": round(now - beat.sent_at, 1),
                    "legs": beat.seconds(),
                }
            if name in self.notes:
                entry["note"] = self.notes[name]
            instances[name] = entry
        return {"note": self.notes.get("", ""), "instances": instances}
