"""The decision table of docs/recovery.md, read as data: what each fault should get, and how an action is
judged against it (wrong target, needless, a page). The decision-table test asserts it; the benchmarks
count against it, for the watchdog and for the baseline alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.trials import Injection, Script

TABLE = Path(__file__).resolve().parents[1] / "docs" / "recovery.md"
SECTION = "## Decision table (real containers)"
NOTHING = "nothing"
FACTOR = 0.2  # the decision-table test's one time factor (docs/recovery.md says so)
SOAK = "quiet-healthy soak"
# Every "nothing" case of the table, one after another, customers writing throughout: 30 minutes at the
# defaults (docs/recovery.md, "The quiet-healthy soak").
QUIET_HEALTHY = Script(
    tuple(
        (at, Injection.parse(text))
        for at, text in (
            (0, "dify:slow seconds=30 lasts=240"),
            (300, "evolution:socket_closed instance=loja reconnect_after=10"),
            (420, "dify:error_500 scope=all lasts=10"),
            (600, "evolution:slow_root seconds=30 lasts=240"),
            (900, "evolution:slow seconds=2 lasts=240"),
            (1200, "evolution:restart_by_hand"),
            (1650, "evolution:socket_closed instance=suporte reconnect_after=10"),
        )
    ),
    watch=1800.0,
)


@dataclass(frozen=True)
class Row:
    case: str
    injection: Injection
    root: str  # session | instance | evolution | dify | outside | none
    first: str  # an action as Outcome.what() names it, or "nothing"
    never: tuple[str, ...]  # action prefixes; "any" when nothing at all may happen


def rows(table: Path = TABLE) -> list[Row]:
    text = table.read_text().split(SECTION, 1)[1]
    out = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| case") or "`" not in line:
            continue
        case, inject, root, first, never = (cell.strip() for cell in line.strip().strip("|").split("|"))
        out.append(
            Row(
                case,
                Injection.parse(inject.strip("`")),
                root,
                first.strip("`"),
                tuple(re.findall(r"`([^`]+)`", never)) or (never,),
            )
        )
    return out


def wrong_target(row: Row, what: str) -> bool:
    """A restart of a component the fault is not in: Evolution or an instance for Dify's fault, Dify for
    Evolution's, an instance's or a session's."""
    if not what.startswith(("restart_container", "restart_instance")):
        return False
    if row.root == "dify":
        return what != "restart_container dify"
    if row.root in ("evolution", "instance", "session"):
        return what == "restart_container dify"
    return False


def needless(row: Row, what: str) -> bool:
    """Force where none was needed: anything for a "nothing" row, a restart for a session's fault or for
    one outside both services (a person's to fix), and a page where a repair was due."""
    if row.first == NOTHING:
        return True
    if what.startswith(("restart_container", "restart_instance")):
        return row.root in ("session", "outside")
    return what == "page" and row.root != "outside"
