"""Acknowledging a paged incident: a person has looked at it, so the watchdog may act on it again.

The ack is journal state the planner reads, not a planner input of its own: the open incident's row is
reset in place (circuit closed, next rung = the problem's first, fresh backoff) and an `ack` record is
added to its actions. The incident stays open, so the flapping rules for a closed incident are
untouched; the restart budgets count the actions of the last hour, so an ack buys no extra restarts.
"""

from __future__ import annotations

from dataclasses import replace

from watchdog.errors import WatchdogError
from watchdog.recovery.journal import Journal
from watchdog.recovery.planner import Incident
from watchdog.recovery.problems import Level, first_rung


class UnknownIncident(WatchdogError, LookupError):
    """No open incident has this key."""


class NotPaged(WatchdogError):
    """The incident is open but its circuit is not: nothing waits for a person."""


def acknowledged(incident: Incident) -> Incident:
    """The incident after an ack: the ladder starts again at the problem's first rung. A problem only a
    person can fix has no ladder; it stays paged, so acknowledging it does not page again."""
    start = first_rung(incident.key)
    return replace(incident, level=start, attempts=0, circuit_open=False, paged=start == Level.HUMAN)


def acknowledge(journal: Journal, key: str, now: float) -> Incident:
    """Check that `key` names a paged open incident, then journal the ack (one transaction)."""
    incident = journal.open_incidents().get(key)
    if incident is None:
        raise UnknownIncident(f"no open incident {key!r}")
    if not incident.circuit_open:
        raise NotPaged(f"incident {key!r} is not paged: recovery is still acting on it")
    after = acknowledged(incident)
    journal.acknowledged(after, describe(after), now)
    return after


def describe(incident: Incident) -> str:
    """What happens next, for the journal, the notification and the CLI."""
    if incident.level == Level.HUMAN:
        return "only a person can fix it: no further page until it recovers"
    return f"recovery acts again from L{int(incident.level)}"
