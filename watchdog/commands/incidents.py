"""`evo-watchdog incidents [--json] [--limit N]`: recent incidents with their actions and outcomes, read
straight from the journal at WATCHDOG_STATE_PATH (read-only, so it works beside a running daemon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from watchdog.clock import iso
from watchdog.recovery.journal import Journal, JournalError
from watchdog.recovery.planner import ACK

EXIT_OK, EXIT_FAILED = 0, 1


def run_incidents(path: Path, *, as_json: bool, limit: int, out: TextIO = sys.stdout) -> int:
    if not path.is_file():
        print(
            f"evo-watchdog: no journal at {path} (WATCHDOG_STATE_PATH); nothing has run there",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        journal = Journal(path, readonly=True)
        try:
            history = journal.history(limit)
        finally:
            journal.close()
    except JournalError as exc:
        print(f"evo-watchdog: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(history, indent=2) if as_json else render(history), file=out)
    return EXIT_OK


def render(history: list[dict[str, Any]]) -> str:
    """One line per incident, newest first, each followed by its actions in order."""
    if not history:
        return "no incidents"
    lines = [f"{'OPENED':<21} {'STATE':<18} {'KEY':<30} SUMMARY"]
    for incident in history:
        opened = iso(incident["opened_at"])
        lines.append(
            f"{opened:<21} {_state(incident):<18} {incident['key']:<30} {incident['summary']}".rstrip()
        )
        for action in incident["actions"]:
            what = f"L{action['level']} {action['kind']}"
            result = action["result"]
            lines.append(
                f"  {iso(action['started_at'])[11:]:<10} {what:<21} {action['target']:<30} {result:<11} "
                f"{action['detail']}".rstrip()
            )
    return "\n".join(lines)


def _state(incident: dict[str, Any]) -> str:
    if incident["closed_at"] is not None:
        return f"recovered {incident['closed_at'] - incident['opened_at']:.0f}s"
    if incident["circuit_open"]:
        return "paged"
    if any(a["kind"] == ACK for a in incident["actions"]):
        return "open, acknowledged"
    return "open"
