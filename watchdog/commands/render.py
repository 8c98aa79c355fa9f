"""Render one probe cycle for people (a table) or programs (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from watchdog.model import Finding, ProbeResult, Severity
from watchdog.status import probe_dict


def render_json(results: Sequence[ProbeResult], findings: Sequence[Finding]) -> str:
    return json.dumps(
        {
            "healthy": not findings,
            "findings": [f.as_dict() for f in findings],
            "probes": [probe_dict(r) for r in results],
        },
        indent=2,
    )


def render_table(results: Sequence[ProbeResult], findings: Sequence[Finding]) -> str:
    rows = [("TARGET", "PROBE", "RESULT", "MS", "DETAIL")]
    for r in results:
        rows.append((r.target, r.probe, "ok" if r.ok else "FAIL", f"{r.duration * 1000:.0f}", r.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    ]
    lines.append("")
    if findings:
        lines.append("Findings:")
        order = {Severity.CRITICAL: 0, Severity.WARNING: 1}
        for f in sorted(findings, key=lambda f: (order[f.severity], f.kind, f.target)):
            lines.append(f"  {f.severity.upper():<8} {f.kind:<22} {f.target:<24} {f.summary}")
        worst = "critical" if any(f.severity is Severity.CRITICAL for f in findings) else "warning"
        lines.append(f"\nUNHEALTHY: {len(findings)} finding(s), worst {worst}")
    else:
        lines.append("HEALTHY: every probe passed, no findings")
    return "\n".join(lines)
