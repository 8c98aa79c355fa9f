"""Doctor's report for people (text) and programs (JSON). Contacts appear only as short hashes."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchdog.doctor.diagnosis import Diagnosis, exit_code, safe_fixes, worst
from watchdog.doctor.fixes import FixResult
from watchdog.doctor.snapshot import InstanceView, Snapshot


@dataclass(frozen=True)
class DoctorReport:
    snapshot: Snapshot
    diagnoses: Sequence[Diagnosis]
    not_checked: Sequence[str]

    @property
    def exit_code(self) -> int:
        return exit_code(self.diagnoses)


def report_dict(report: DoctorReport) -> dict[str, Any]:
    snap = report.snapshot
    return {
        "healthy": not report.diagnoses,
        "worst": worst(report.diagnoses),
        "exit_code": report.exit_code,
        "evolution": {"version": snap.version, "whatsapp_web_version": snap.whatsapp_web_version},
        "instances": [
            {
                "name": inst.name,
                "stored_status": inst.stored_status,
                "live_state": inst.live_state if inst.live_read else "unread",
                "bots": [{"id": b.id, "bot_type": b.bot_type, "enabled": b.enabled} for b in inst.bots],
                "sessions": len(inst.sessions),
            }
            for inst in snap.instances
        ],
        "integrations": {inst.name: _integrations(inst) for inst in snap.instances},
        "findings": [d.as_dict() for d in report.diagnoses],
        "not_checked": list(report.not_checked),
    }


def _integrations(inst: InstanceView) -> dict[str, Any]:
    """Per integration on this instance: its bots, the settings row's options that decide a stuck
    session's fate, and its sessions by status (watchdog/integrations.py)."""
    out: dict[str, Any] = {}
    for name in {*(b.integration for b in inst.bots), *inst.settings}:
        statuses: dict[str, int] = {}
        for s in inst.sessions:
            if s.integration == name:
                statuses[s.status] = statuses.get(s.status, 0) + 1
        row = inst.settings.get(name)
        out[name] = {
            "bots": [
                {"id": b.id, "enabled": b.enabled, "expire": b.expire, "keep_open": b.keep_open}
                for b in inst.bots
                if b.integration == name
            ],
            "settings": None
            if row is None
            else {"expire": row.expire, "keep_open": row.keep_open, "stop_bot_from_me": row.stop_bot_from_me},
            "sessions": statuses,
        }
    return {"off": list(inst.off), "on": dict(sorted(out.items()))}


def render_json(
    report: DoctorReport, *, before: DoctorReport | None = None, fixes: Sequence[FixResult] | None = None
) -> str:
    """One document: the final state; with --fix also the fixes and the findings before them."""
    body = report_dict(report)
    if fixes is not None:
        body["fixes"] = [f.as_dict() for f in fixes]
    if before is not None:
        body["findings_before_fix"] = [d.as_dict() for d in before.diagnoses]
    return json.dumps(body, indent=2)


def render_text(report: DoctorReport, *, fixing: bool = False) -> str:
    """`fixing`: inside `--fix`, so the closing line does not suggest running it."""
    snap = report.snapshot
    lines = [_headline(snap), ""]
    for d in report.diagnoses:
        f = d.finding
        lines.append(f"{f.severity.upper():<8}  {f.kind}  {f.target}")
        lines += _wrapped(f.summary, "  ")
        lines += _wrapped(("fix (safe, --fix applies it): " if d.fix.action else "fix: ") + d.fix.text, "  ")
        lines.append("")
    if report.not_checked:
        lines.append("Not checked (the API cannot show it):")
        for note in report.not_checked:
            lines += _wrapped(note, "    ", first="  - ")
        lines.append("")
    lines.append(_verdict(report, fixing=fixing))
    return "\n".join(lines)


def render_fixes(results: Sequence[FixResult]) -> str:
    if not results:
        return "No fix applied."
    return "\n".join(
        f"{'fixed' if r.ok else 'FAILED'}  {r.action}  evolution:{r.instance}  {r.detail}" for r in results
    )


def _headline(snap: Snapshot) -> str:
    if snap.unreachable is not None:
        return "Evolution API could not be read."
    web = f", WhatsApp Web {snap.whatsapp_web_version}" if snap.whatsapp_web_version else ""
    per: dict[str, int] = {}
    for bot in (b for i in snap.instances for b in i.bots):
        per[bot.integration] = per.get(bot.integration, 0) + 1
    bots = sum(per.values())
    which = f" ({', '.join(f'{name} {n}' for name, n in sorted(per.items()))})" if per else ""
    sessions = sum(len(i.sessions) for i in snap.instances)
    return (
        f"Evolution API {snap.version}{web}: {len(snap.instances)} instance(s), "
        f"{bots} bot(s){which}, {sessions} session(s)"
    )


def _verdict(report: DoctorReport, *, fixing: bool) -> str:
    if not report.diagnoses:
        return f"No known stuck mode found (exit {report.exit_code})."
    fixable = len(safe_fixes(report.diagnoses))
    hint = f"; {fixable} safe fix(es)" if fixable else ""
    if fixable and not fixing:
        hint += ": run `evo-watchdog doctor --fix`"
    return (
        f"{len(report.diagnoses)} finding(s), worst {worst(report.diagnoses)} (exit {report.exit_code}){hint}"
    )


def _wrapped(text: str, indent: str, *, first: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=100,
        initial_indent=first or indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [""]
