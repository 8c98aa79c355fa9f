"""A doctor finding with its fix, the finding kinds only doctor emits, and the exit code by severity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from watchdog.model import Finding, Severity

# Kinds doctor adds to the ones in health.py (which it reuses where the meaning is the same).
BOT_TYPE_IGNORED = "bot_type_ignored"
INSTANCE_STATUS_STALE = "instance_status_stale"
KNOWN_DEFECT = "known_defect"
UNREADABLE = "unreadable"
SESSION_SHARED = "session_shared"  # a contact held by two integrations on one instance: the newest decides

# Safe fixes `--fix` may apply; every other fix is advice for a person.
DELETE_SESSION = "delete_session"  # POST /{integration}/changeStatus {remoteJid, status: delete}
WEBHOOK_EVENTS = "webhook_events"  # POST /webhook/set: same url/headers, enabled, needed events added

# Exit codes. 2 stays every subcommand's "bad settings", so critical takes 3.
EXIT_OK, EXIT_WARNING, EXIT_CRITICAL = 0, 1, 3


@dataclass(frozen=True)
class Fix:
    text: str  # what to do, for a person; no secrets, no phone numbers
    action: str = ""  # DELETE_SESSION | WEBHOOK_EVENTS | "" (not safe to automate)
    instance: str = ""
    subject: str = field(default="", repr=False)  # the remoteJid a DELETE_SESSION acts on; never shown
    route: str = "dify"  # the integration whose changeStatus a DELETE_SESSION calls (integrations.py)

    @property
    def key(self) -> tuple[str, str, str]:
        """Two findings with the same key share one repair (a contact both paused and stale)."""
        return self.action, self.instance, self.subject


@dataclass(frozen=True)
class Diagnosis:
    finding: Finding
    fix: Fix

    def as_dict(self) -> dict[str, object]:
        return {**self.finding.as_dict(), "fix": self.fix.text, "safe_fix": self.fix.action or None}


_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1}


def ordered(diagnoses: Sequence[Diagnosis]) -> list[Diagnosis]:
    return sorted(diagnoses, key=lambda d: (_ORDER[d.finding.severity], d.finding.kind, d.finding.target))


def worst(diagnoses: Sequence[Diagnosis]) -> str:
    """ "critical", "warning" or "ok"."""
    severities = {d.finding.severity for d in diagnoses}
    if Severity.CRITICAL in severities:
        return str(Severity.CRITICAL)
    return str(Severity.WARNING) if severities else "ok"


def exit_code(diagnoses: Sequence[Diagnosis]) -> int:
    return {"critical": EXIT_CRITICAL, "warning": EXIT_WARNING, "ok": EXIT_OK}[worst(diagnoses)]


def safe_fixes(diagnoses: Sequence[Diagnosis]) -> list[Fix]:
    """The automatable fixes, one per repair."""
    seen: dict[tuple[str, str, str], Fix] = {}
    for d in diagnoses:
        if d.fix.action and d.fix.key not in seen:
            seen[d.fix.key] = d.fix
    return list(seen.values())
