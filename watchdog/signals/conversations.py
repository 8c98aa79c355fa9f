"""What the webhooks say about conversations: turns, stalls and instances that stopped receiving.

No I/O and no timers: the owner calls `ingest()` per webhook and `collect_stalls()` when
`next_deadline()` passes, and reads `findings()`. Time comes from the injected clock.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger

from watchdog.clock import Clock
from watchdog.metrics import Metrics
from watchdog.model import Finding, ProbeResult, Severity, contact_id, instance_target
from watchdog.signals.answering import AnsweringIntegrations
from watchdog.signals.turnaround import BOT, HUMAN, Stall, Turn, TurnaroundTracker
from watchdog.signals.webhook import Envelope, connection_seen, message_seen

STALLED_CONTACT = "stalled_contact"
INSTANCE_STALLED = "instance_stalled"
INBOUND_STOPPED = "inbound_stopped"
SIGNAL_FINDING_KINDS = (STALLED_CONTACT, INSTANCE_STALLED, INBOUND_STOPPED)

STALLED_CONTACTS_PER_INSTANCE = 3  # this many stalled contacts on one instance is the instance's problem
# This many contacts unanswered at once, on any instances, is broad: a service, not each contact, may be at
# fault (signals/diagnosis.py asks Dify; recovery/attribution.py grounds log-only suspicions on it).
BROAD_STALL_CONTACTS = 2
RECENT_TURNS = 50  # per instance, for /api/status
STATUS_LIST_LIMIT = 20  # longest waits listed per instance in /api/status
QUIET_FACTOR = 10  # an instance is quiet after this many of its usual gaps between inbound messages
MIN_INBOUND_TO_LEARN = 5
# Judged alone, with no other instance receiving to say that customers are writing, a silence needs a longer
# record: a handful of messages (one conversation, say) and then nothing is ordinary on a quiet bot.
MIN_INBOUND_TO_JUDGE_ALONE = 20


@dataclass
class InboundActivity:
    """When an instance last received a customer message, and its usual gap between them."""

    last_at: float
    gap: float | None = None  # exponentially weighted mean gap
    count: int = 1  # messages learned from (0: forgotten, the next one starts afresh)

    def seen(self, now: float) -> None:
        if self.count:
            gap = now - self.last_at
            self.gap = gap if self.gap is None else 0.8 * self.gap + 0.2 * gap
        self.last_at = now
        self.count += 1

    def forget(self) -> None:
        """Learn the traffic anew from the next message (`last_at` stays: customers did write then)."""
        self.gap, self.count = None, 0

    @property
    def learned(self) -> bool:
        return self.gap is not None and self.count >= MIN_INBOUND_TO_LEARN


class ConversationMonitor:
    def __init__(
        self,
        clock: Clock,
        metrics: Metrics,
        *,
        contact_key: bytes,
        threshold: float,
        stall_seconds: float,
        max_pending: int,
    ) -> None:
        self.clock = clock
        self.metrics = metrics
        self.stall_seconds = stall_seconds
        self.tracker = TurnaroundTracker(
            clock,
            contact_key=contact_key,
            threshold_seconds=threshold,
            stall_seconds=stall_seconds,
            max_pending=max_pending,
        )
        self.activity: dict[str, InboundActivity] = {}
        self.states: dict[str, str] = {}  # instance -> last state from connection.update
        self.recent: dict[str, deque[Turn]] = defaultdict(lambda: deque(maxlen=RECENT_TURNS))
        self.answering = AnsweringIntegrations()
        self._contact_key = contact_key

    def learn_sessions(self, results: Iterable[ProbeResult]) -> None:
        """Fresh sessions probes: which integration answers whom, for the turnaround and stall labels."""
        self.answering.learn(results)

    def ingest(self, envelope: Envelope, *, include_groups: bool = False) -> str:
        """Fold one envelope in; returns `accepted` when it carried a signal, else `ignored`."""
        connection = connection_seen(envelope)
        if connection is not None:
            self.states[connection.instance] = connection.state
            return "accepted"
        seen = message_seen(envelope, include_groups=include_groups)
        if seen is None:
            return "ignored"
        if seen.direction == "inbound":
            if seen.awaits_reply:
                self.tracker.inbound(seen.instance, seen.remote_jid, seen.message_id, seen.kind)
            self._inbound_activity(seen.instance)  # a sticker too: the processor delivered it
            return "accepted"
        turn = self.tracker.reply(seen.instance, seen.remote_jid, seen.message_id, replied_by=seen.direction)
        if turn is not None:
            self._record(turn)
        return "accepted"

    def answering_for(self, instance: str, remote_jid: str) -> str:
        """The bot integration answering this jid on `instance` (signals/answering.py), or `unknown`."""
        return self.answering.of(instance, contact_id(remote_jid, key=self._contact_key))

    def _inbound_activity(self, instance: str) -> None:
        now = self.clock.monotonic()
        if instance in self.activity:
            self.activity[instance].seen(now)
        else:
            self.activity[instance] = InboundActivity(last_at=now)

    def _record(self, turn: Turn) -> None:
        if turn.replied_by == HUMAN:
            self.metrics.human_replies.labels(instance=turn.instance).inc()
        else:
            turn = replace(turn, integration=self.answering.of(turn.instance, turn.contact))
            labels = {"instance": turn.instance, "kind": turn.kind, "integration": turn.integration}
            self.metrics.turnaround.labels(**labels).observe(turn.seconds)
            if turn.breach:
                self.metrics.breaches.labels(**labels).inc()
        if turn.was_stalled:
            logger.info("{} answered on {} after {:.1f}s", turn.contact, turn.instance, turn.seconds)
        self.recent[turn.instance].append(turn)

    def collect_stalls(self) -> list[Stall]:
        stalls = self.tracker.due_stalls()
        for stall in stalls:
            integration = self.answering.of(stall.instance, stall.contact)
            self.metrics.stalled.labels(
                instance=stall.instance, kind=stall.kind, integration=integration
            ).inc()
        return stalls

    def repaired(self, *, instance: str | None, remote_jid: str | None = None) -> int:
        """A verified repair covers these stalled waits: they stop being findings (new ones start fresh).
        A service restart (`instance` None) also answers the silences it found: a quiet instance learns
        its traffic anew from the restarted process, so one silence (a night, say) is acted on once, not
        restarted again and then paged."""
        dropped = self.tracker.drop_stalled(instance, remote_jid)
        if dropped:
            logger.info("{} stalled wait(s) closed by a repair on {}", dropped, instance or "every instance")
        if instance is None:
            now = self.clock.monotonic()
            for activity in self.activity.values():
                if activity.learned and now - activity.last_at > self._quiet_limit(activity):
                    activity.forget()
        return dropped

    def inbound_within(self, seconds: float) -> bool:
        """Did any customer write in the last `seconds`?"""
        now = self.clock.monotonic()
        return any(now - a.last_at <= seconds for a in self.activity.values())

    def next_deadline(self) -> float | None:
        return self.tracker.next_deadline()

    def findings(self) -> list[Finding]:
        findings: list[Finding] = []
        per_instance: dict[str, int] = defaultdict(int)
        now = self.clock.monotonic()
        for turn in self.tracker.stalled():
            per_instance[turn.instance] += 1
            waited = now - turn.first_at
            contact = turn.contact  # keyed hash: computed once
            findings.append(
                Finding(
                    STALLED_CONTACT,
                    instance_target(turn.instance),
                    Severity.CRITICAL,
                    f"contact {contact}: no reply for {waited:.0f}s ({turn.kind}, {turn.messages} messages)",
                    {
                        "contact": contact,
                        "kind": turn.kind,
                        "waiting_seconds": round(waited, 1),
                        "integration": self.answering.of(turn.instance, contact),
                    },
                    subject=turn.remote_jid,
                )
            )
        for instance, count in sorted(per_instance.items()):
            if count >= STALLED_CONTACTS_PER_INSTANCE:
                summary = f"{count} contacts without a reply on this instance"
                findings.append(
                    Finding(
                        INSTANCE_STALLED,
                        instance_target(instance),
                        Severity.CRITICAL,
                        summary,
                        {"contacts": count},
                    )
                )
        findings.extend(self._quiet_instances(now))
        return findings

    def _quiet_instances(self, now: float) -> list[Finding]:
        """Inbound stopped on an instance that says `open`: how a dead message processor shows (upstream
        logs nothing). Each instance is judged against its own traffic, once learned: silent for longer
        than QUIET_FACTOR of its usual gaps (a moving average, so traffic that tapers off raises the bar)
        and the stall time. While other instances still receive, that silence is the finding; alone, too,
        after a longer record (MIN_INBOUND_TO_JUDGE_ALONE). When the other judged instances went quiet
        with it, no customers at all (night) is likelier than processors dying together, so nothing is
        said; one quiet since long before is no witness either way. The end-to-end heartbeat (issue 16)
        is the proof; this is the customers' side of it."""
        limit = {i: self._quiet_limit(a) for i, a in self.activity.items()}
        silent = {i: now - a.last_at for i, a in self.activity.items()}
        receiving = {i for i in self.activity if silent[i] <= limit[i]}
        judged = {i for i, a in self.activity.items() if a.learned and self.states.get(i, "open") == "open"}
        quiet: list[Finding] = []
        for instance in sorted(judged - receiving):
            activity = self.activity[instance]
            others = sorted(receiving - {instance})
            went_quiet_with_it = [
                i
                for i in judged - receiving - {instance}
                if abs(self.activity[i].last_at - activity.last_at) <= limit[instance]
            ]
            if not others and (went_quiet_with_it or activity.count < MIN_INBOUND_TO_JUDGE_ALONE):
                continue
            while_others = f" while {len(others)} other instance(s) still receive" if others else ""
            quiet.append(
                Finding(
                    INBOUND_STOPPED,
                    instance_target(instance),
                    Severity.CRITICAL,
                    f"no inbound message for {silent[instance]:.0f}s "
                    f"(usually every {activity.gap or 0.0:.0f}s){while_others}",
                    {
                        "silent_seconds": round(silent[instance], 1),
                        "usual_gap_seconds": round(activity.gap or 0.0, 1),
                        "instances_receiving": len(others),
                    },
                )
            )
        return quiet

    def _quiet_limit(self, activity: InboundActivity) -> float:
        """Silence longer than this is unusual: ten of the instance's usual gaps, at least the stall time."""
        return max(self.stall_seconds, QUIET_FACTOR * (activity.gap or 0.0))

    def status(self) -> dict[str, Any]:
        """Per instance: slowest recent turns and stalled waits, by contact hash only."""
        now = self.clock.monotonic()
        view: dict[str, Any] = {}
        for instance, turns in self.recent.items():
            slowest = sorted((t for t in turns if t.replied_by == BOT), key=lambda t: -t.seconds)[:5]
            view.setdefault(instance, {})["slowest"] = [
                {"contact": t.contact, "kind": t.kind, "seconds": round(t.seconds, 3)} for t in slowest
            ]
        for turn in self.tracker.pending():  # oldest first
            entry = view.setdefault(turn.instance, {"slowest": []})
            listed = entry.setdefault("stalled" if turn.stalled else "waiting", [])
            if len(listed) < STATUS_LIST_LIMIT:
                listed.append(
                    {"contact": turn.contact, "kind": turn.kind, "seconds": round(now - turn.first_at, 1)}
                )
        return view
