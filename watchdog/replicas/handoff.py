"""The handoff record: the leader's recent journal, kept in Redis beside the lease for its successor.

Each replica has its own SQLite journal. The leader writes this record (fenced by its lease) before
each action starts, after it ends and after every recovery turn; a replica that wins the lease copies
the record into its own journal before it acts, then resumes as a restarted watchdog would: an action
the dead leader left running counts as interrupted, its cooldown runs from the takeover, and the same
rung is tried again only if the problem outlives that cooldown. Nothing here is secret: the journal
stores contacts by hash only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from watchdog.errors import CoordinationError
from watchdog.recovery.journal import Journal
from watchdog.recovery.planner import DRY_RUN, RUNNING, ActionRecord, Incident, Plan, PlannedAction
from watchdog.recovery.problems import Level

VERSION = 1
LOOKBACK_SECONDS = 3600.0  # as far back as the planner's budgets look
MAX_ACTIONS = 200
MAX_INCIDENTS = 500


@dataclass(frozen=True)
class Handoff:
    replica: str
    written_at: float
    maintenance_until: float
    incidents: tuple[Incident, ...]
    actions: tuple[ActionRecord, ...]


def record(journal: Journal, *, replica: str, now: float, closed_window: float) -> str:
    """This replica's open and recently closed incidents and its last hour of actions, as JSON."""
    incidents = [*journal.open_incidents().values(), *journal.recently_closed(now - closed_window).values()]
    actions = journal.recent_actions(now - LOOKBACK_SECONDS)[-MAX_ACTIONS:]
    return json.dumps(
        {
            "version": VERSION,
            "replica": replica,
            "written_at": now,
            "maintenance_until": journal.maintenance_until(),
            "incidents": [asdict(i) for i in incidents[:MAX_INCIDENTS]],
            "actions": [asdict(a) for a in actions],
        },
        separators=(",", ":"),
    )


def decode(raw: str) -> Handoff:
    """Parse a record; anything malformed is a CoordinationError (the caller then acts on its own journal)."""
    try:
        body = json.loads(raw)
        if body["version"] != VERSION:
            raise ValueError(f"version {body['version']!r}")
        return Handoff(
            replica=str(body["replica"])[:200],
            written_at=float(body["written_at"]),
            maintenance_until=float(body["maintenance_until"]),
            incidents=tuple(_incident(i) for i in body["incidents"][:MAX_INCIDENTS]),
            actions=tuple(_action(a) for a in body["actions"][:MAX_ACTIONS]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CoordinationError(f"the handoff record in redis is malformed ({type(exc).__name__})") from None


def unknown_actions(mine: Sequence[ActionRecord], theirs: Sequence[ActionRecord]) -> list[ActionRecord]:
    """Their actions this journal does not hold yet (both replicas may share one journal file)."""
    seen = {_identity(a) for a in mine}
    return [a for a in theirs if _identity(a) not in seen]


def take_over(journal: Journal, handoff: Handoff, now: float) -> int:
    """Copy the predecessor's incidents, actions and maintenance window into `journal`; returns how many
    actions were new. Actions it left running stay `running` here, for Journal.resume to judge."""
    own_open = journal.open_incidents()
    superseded = [
        replace(own, closed_at=now)
        for theirs in handoff.incidents
        if theirs.closed_at is None
        and (own := own_open.get(theirs.key)) is not None
        and own.opened_at != theirs.opened_at
    ]
    journal.apply(Plan(updated=[*superseded, *handoff.incidents]))
    new = unknown_actions(journal.recent_actions(now - 2 * LOOKBACK_SECONDS), handoff.actions)
    for action in new:
        note = f"taken over from replica {handoff.replica}"
        planned = PlannedAction(
            action.incident, action.kind, action.level, action.target, note, action.result == DRY_RUN
        )
        action_id = journal.started(planned, action.started_at)
        if action.result != RUNNING:
            finished = action.finished_at if action.finished_at is not None else action.started_at
            journal.finished(action_id, action.result, note, finished)
    if handoff.maintenance_until > journal.maintenance_until():
        journal.set_maintenance(handoff.maintenance_until)
    return len(new)


def _identity(action: ActionRecord) -> tuple[str, str, str, float]:
    return (action.incident, action.kind, action.target, action.started_at)


def _incident(raw: dict[str, Any]) -> Incident:
    incident = Incident(**raw)
    return replace(
        incident,
        opened_at=float(incident.opened_at),
        level=Level(int(incident.level)),
        attempts=int(incident.attempts),
        healthy_since=_time(incident.healthy_since),
        closed_at=_time(incident.closed_at),
        kinds=tuple(str(kind) for kind in incident.kinds),
    )


def _action(raw: dict[str, Any]) -> ActionRecord:
    action = ActionRecord(**raw)
    return replace(
        action,
        level=Level(int(action.level)),
        started_at=float(action.started_at),
        finished_at=_time(action.finished_at),
    )


def _time(value: Any) -> float | None:
    return None if value is None else float(value)
