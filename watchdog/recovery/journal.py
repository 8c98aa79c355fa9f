"""The recovery journal (SQLite at WATCHDOG_STATE_PATH): incidents and every action, written before an
action starts and updated when it ends, so a watchdog restarted mid-incident resumes instead of repeating.

Contacts are stored by hash only; nothing secret is written here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from watchdog.errors import WatchdogError
from watchdog.recovery.planner import (
    ACK,
    FAILED,
    OK,
    PAGE,
    RUNNING,
    UNDELIVERED,
    ActionRecord,
    Incident,
    Plan,
    PlannedAction,
    RecoveryPlanner,
)
from watchdog.recovery.problems import Level, Problem

INTERRUPTED = "interrupted"  # running when the watchdog died: outcome unknown, judged by the problem
# Results: running, ok, failed, dry_run, skipped (inflight.py), interrupted; a page also `undelivered`
# (no notify target: it reached nobody), see recovery/hands.py.
SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    key TEXT NOT NULL, service TEXT NOT NULL, opened_at REAL NOT NULL, level INTEGER NOT NULL,
    summary TEXT NOT NULL, instance TEXT NOT NULL, contact TEXT NOT NULL, attempts INTEGER NOT NULL,
    paged INTEGER NOT NULL, circuit_open INTEGER NOT NULL, healthy_since REAL, closed_at REAL,
    kinds TEXT NOT NULL DEFAULT '', PRIMARY KEY (key, opened_at)
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, incident TEXT NOT NULL, kind TEXT NOT NULL, level INTEGER NOT NULL,
    target TEXT NOT NULL, reason TEXT NOT NULL, dry_run INTEGER NOT NULL, started_at REAL NOT NULL,
    finished_at REAL, result TEXT NOT NULL, detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS actions_started ON actions (started_at);
CREATE TABLE IF NOT EXISTS maintenance (id INTEGER PRIMARY KEY CHECK (id = 1), until REAL NOT NULL);
"""
_INCIDENT_COLUMNS = (
    "key, service, opened_at, level, summary, instance, contact, attempts, paged, circuit_open, "
    "healthy_since, closed_at, kinds"
)
_INCIDENT_SLOTS = ",".join("?" * 13)


class JournalError(WatchdogError):
    """The journal's storage failed (disk full, file unwritable)."""


class Journal:
    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        """`readonly` opens an existing journal without creating or changing it (`evo-watchdog incidents`)."""
        try:
            if readonly:
                uri = f"{Path(path).resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                return
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(incidents)")}
            if "kinds" not in columns:  # a journal from before incidents kept their finding kinds
                self._db.execute("ALTER TABLE incidents ADD COLUMN kinds TEXT NOT NULL DEFAULT ''")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal at {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise JournalError(f"journal write failed: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Reads fail as JournalError too, so callers handle one error for a failing disk."""
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise JournalError(f"journal read failed: {exc}") from exc

    def resume(self, now: float, *, keep: Collection[int] = ()) -> int:
        """At start-up: actions left running by a dead watchdog become `interrupted`. Whether such an
        action reached its target is unknown, so its open incident goes back to that rung: after the
        cooldown the same least-force step is tried again instead of climbing because we crashed.
        `keep`: ids of actions this process still runs (a replica taking the lease back mid-action)."""
        ids = ",".join(str(int(i)) for i in keep)
        spare = f"AND a.id NOT IN ({ids})" if ids else ""
        with self._tx() as db:
            cut_off = (
                "FROM actions a WHERE a.incident = incidents.key AND a.result = ? "
                f"AND a.started_at >= incidents.opened_at {spare}"
            )
            db.execute(
                f"UPDATE incidents SET level = (SELECT MIN(a.level) {cut_off}) "
                f"WHERE closed_at IS NULL AND EXISTS (SELECT 1 {cut_off})",
                (RUNNING, RUNNING),
            )
            cursor = db.execute(
                f"UPDATE actions AS a SET result = ?, finished_at = ? WHERE result = ? {spare}",
                (INTERRUPTED, now, RUNNING),
            )
            return cursor.rowcount

    def interrupt(self, action_id: int, detail: str, now: float) -> bool:
        """A running action cut off on purpose (shutdown): recorded and judged as `resume` judges one a
        dead watchdog left running, so the restarted watchdog carries on the same way. False when the
        action had already ended."""
        with self._tx() as db:
            row = db.execute(
                "SELECT incident, level, started_at FROM actions WHERE id = ? AND result = ?",
                (action_id, RUNNING),
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "UPDATE incidents SET level = ? WHERE key = ? AND closed_at IS NULL AND opened_at <= ?",
                (row[1], row[0], row[2]),
            )
            db.execute(
                "UPDATE actions SET result = ?, detail = ?, finished_at = ? WHERE id = ?",
                (INTERRUPTED, detail[:500], now, action_id),
            )
            return True

    def open_incidents(self) -> dict[str, Incident]:
        with self._reading() as db:
            rows = db.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE closed_at IS NULL")
            return {row[0]: _incident(row) for row in rows}

    def recently_closed(self, since: float) -> dict[str, Incident]:
        with self._reading() as db:
            rows = db.execute(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE closed_at >= ? ORDER BY closed_at", (since,)
            )
            return {row[0]: _incident(row) for row in rows}

    def recent_actions(self, since: float) -> list[ActionRecord]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT incident, kind, level, target, started_at, finished_at, result FROM actions "
                "WHERE started_at >= ? ORDER BY id",
                (since,),
            )
            return [ActionRecord(r[0], r[1], Level(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def apply(self, plan: Plan) -> None:
        with self._tx() as db:
            for incident in (*plan.opened, *plan.updated, *plan.closed):
                _save(db, incident)

    def acknowledged(self, incident: Incident, detail: str, now: float) -> None:
        """The acknowledged incident and its `ack` record, in one transaction (see recovery/ack.py)."""
        with self._tx() as db:
            _save(db, incident)
            db.execute(
                "INSERT INTO actions (incident, kind, level, target, reason, dry_run, started_at, "
                "finished_at, result, detail) VALUES (?,?,?,?,?,0,?,?,?,?)",
                (incident.key, ACK, int(Level.HUMAN), "on-call", "acknowledged", now, now, OK, detail[:500]),
            )

    def started(self, action: PlannedAction, now: float) -> int:
        """Written before the action runs."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO actions (incident, kind, level, target, reason, dry_run, started_at, result) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    action.incident,
                    action.kind,
                    int(action.level),
                    action.target,
                    action.reason,
                    int(action.dry_run),
                    now,
                    RUNNING,
                ),
            )
            return int(cursor.lastrowid or 0)

    def finished(self, action_id: int, result: str, detail: str, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE actions SET result = ?, detail = ?, finished_at = ? WHERE id = ?",
                (result, detail[:500], now, action_id),
            )

    def plan(self, planner: RecoveryPlanner, problems: Sequence[Problem], now: float) -> Plan:
        """Ask the planner about these problems against what the journal remembers, and record the plan."""
        plan = planner.plan(
            problems,
            self.open_incidents(),
            self.recent_actions(now - 3600),
            now,
            self.recently_closed(now - planner.policy.healthy_reset),
        )
        self.apply(plan)
        return plan

    def unreached_pages(self, since: float) -> dict[str, int]:
        """Incidents paged since `since` whose page did not reach on-call (`undelivered`: no target;
        `failed`: a target refused), unless a later page of the same incident was delivered."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT a.result, COUNT(DISTINCT a.incident) FROM actions a "
                "WHERE a.kind = ? AND a.result IN (?, ?) AND a.started_at >= ? AND NOT EXISTS ("
                "SELECT 1 FROM actions b WHERE b.incident = a.incident AND b.kind = ? AND b.result = ? "
                "AND b.id > a.id) GROUP BY a.result",
                (PAGE, UNDELIVERED, FAILED, since, PAGE, OK),
            ).fetchall()
        counts = {UNDELIVERED: 0, FAILED: 0}
        counts.update({str(result): int(n) for result, n in rows})
        return counts

    def maintenance_until(self) -> float:
        with self._reading() as db:
            row = db.execute("SELECT until FROM maintenance WHERE id = 1").fetchone()
        return float(row[0]) if row else 0.0

    def set_maintenance(self, until: float) -> None:
        """Kept in the journal so a restarted watchdog stays silent until the window ends."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO maintenance (id, until) VALUES (1, ?)", (until,))

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent incidents with their actions, newest first (for /api/status and `incidents`)."""
        with self._reading() as db:
            return self._history(db, limit)

    def _history(self, db: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
        rows = db.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents ORDER BY opened_at DESC LIMIT ?", (limit,)
        ).fetchall()
        out = []
        for row in rows:
            incident = _incident(row)
            acts = db.execute(
                "SELECT kind, level, target, dry_run, started_at, finished_at, result, detail FROM actions "
                "WHERE incident = ? AND started_at >= ? AND started_at <= ? ORDER BY id",
                (incident.key, incident.opened_at, incident.closed_at or float("inf")),
            ).fetchall()
            pages = [a[6] for a in acts if a[0] == PAGE]
            out.append(
                {
                    "key": incident.key,
                    "summary": incident.summary,
                    "opened_at": incident.opened_at,
                    "closed_at": incident.closed_at,
                    "paged": incident.paged,
                    "circuit_open": incident.circuit_open,
                    "page": pages[-1] if pages else None,  # the last page's result: did on-call get it?
                    "actions": [
                        {
                            "kind": a[0],
                            "level": a[1],
                            "target": a[2],
                            "dry_run": bool(a[3]),
                            "started_at": a[4],
                            "finished_at": a[5],
                            "result": a[6],
                            "detail": a[7],
                        }
                        for a in acts
                    ],
                }
            )
        return out


def _save(db: sqlite3.Connection, incident: Incident) -> None:
    db.execute(
        f"INSERT OR REPLACE INTO incidents ({_INCIDENT_COLUMNS}) VALUES ({_INCIDENT_SLOTS})",
        (
            incident.key,
            incident.service,
            incident.opened_at,
            int(incident.level),
            incident.summary,
            incident.instance,
            incident.contact,
            incident.attempts,
            int(incident.paged),
            int(incident.circuit_open),
            incident.healthy_since,
            incident.closed_at,
            ",".join(incident.kinds),
        ),
    )


def _incident(row: Any) -> Incident:
    return Incident(
        key=row[0],
        service=row[1],
        opened_at=row[2],
        level=Level(row[3]),
        summary=row[4],
        instance=row[5],
        contact=row[6],
        attempts=row[7],
        paged=bool(row[8]),
        circuit_open=bool(row[9]),
        healthy_since=row[10],
        closed_at=row[11],
        kinds=tuple(row[12].split(",")) if row[12] else (),
    )
