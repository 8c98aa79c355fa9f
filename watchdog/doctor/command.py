"""`evo-watchdog doctor`: read the stack once, report known stuck modes with fixes, optionally repair.

Exit code by the worst finding left: 0 none, 1 warnings, 3 critical (2 stays "bad settings").
"""

from __future__ import annotations

from typing import IO

import httpx

from watchdog.clients.dify import dify_client_for
from watchdog.clients.evolution import evolution_client_for
from watchdog.config import Settings
from watchdog.contactkey import resolve_contact_key
from watchdog.doctor.checks import diagnose
from watchdog.doctor.diagnosis import safe_fixes
from watchdog.doctor.fetch import take_snapshot
from watchdog.doctor.fixes import FixResult, apply_fixes, confirm
from watchdog.doctor.limits import not_checked
from watchdog.doctor.render import DoctorReport, render_fixes, render_json, render_text
from watchdog.probes.suite import http_client


async def examine(settings: Settings, http: httpx.AsyncClient, contact_key: bytes) -> DoctorReport:
    snap = await take_snapshot(
        evolution_client_for(http, settings),
        dify_client_for(http, settings),
        dify_key=settings.dify_api_key,
        contact_key=contact_key,
        instances=settings.evolution_instances,
        webhook_url=settings.webhook_url,
        stall_seconds=settings.stall_seconds,
    )
    return DoctorReport(snap, diagnose(snap), not_checked(snap))


async def run_doctor(
    settings: Settings,
    *,
    as_json: bool,
    fix: bool,
    yes: bool,
    stdin: IO[str],
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    """With --fix the report is printed, the safe fixes applied (after a y/N unless `yes`), and the
    stack examined again: the exit code is that of what is left."""
    key = resolve_contact_key(settings, create=False)  # the daemon's ids when it has a key; no state left
    async with http_client(settings) as http:
        report = await examine(settings, http, key)
        if not fix:
            stdout.write((render_json(report) if as_json else render_text(report)) + "\n")
            return report.exit_code
        fixes = safe_fixes(report.diagnoses)
        people = stderr if as_json else stdout  # with --json, stdout carries only the JSON document
        people.write(render_text(report, fixing=True) + "\n\n")
        people.flush()
        results: list[FixResult] = []
        after = report
        if not fixes:
            people.write("Nothing doctor can fix safely.\n")
        elif yes or confirm(len(fixes), stdin, stderr):
            results = await apply_fixes(evolution_client_for(http, settings), fixes, contact_key=key)
            after = await examine(settings, http, key)
            after_text = render_text(after, fixing=True)
            people.write(render_fixes(results) + "\n\nAfter the fixes:\n" + after_text + "\n")
        else:
            people.write("Nothing changed.\n")
        if as_json:
            stdout.write(render_json(after, before=report, fixes=results) + "\n")
        return after.exit_code
