"""Figures and how they are written: benchmarks/results/latest.md (a table) and latest.json."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    section: str
    name: str
    value: float | str | None
    unit: str
    target: str = ""  # e.g. ">= 5000"; empty = reported, no target
    met: bool | None = None
    conditions: str = ""


@dataclass
class Report:
    smoke: bool = False
    figures: list[Figure] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per-fault rows, etc.
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def machine(self) -> dict[str, Any]:
        load = os.getloadavg()
        return {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "load_average_1_5_15": [round(x, 2) for x in load],
            "shared": "a noisy shared machine: compare figures within one run (ratios), not across runs",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "smoke": self.smoke,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "duration_seconds": round(time.time() - self.started, 1),
            "machine": self.machine(),
            "figures": [asdict(f) for f in self.figures],
            "tables": self.tables,
            "notes": self.notes,
        }

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.as_dict()
        md, js = directory / "latest.md", directory / "latest.json"
        js.write_text(json.dumps(data, indent=2) + "\n")
        md.write_text(render_markdown(data))
        return md, js


def _show(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value} {unit}".strip()


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def render_markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Benchmark results"
        + (" (smoke run: sizes cut to seconds, not the real figures)" if data["smoke"] else ""),
        "",
        f"Run {data['started_utc']}, {data['duration_seconds']:g} s; {m['cpus']} CPUs, Python {m['python']}, "
        f"load average at the end {m['load_average_1_5_15']}. {m['shared']}.",
        "Regenerate with `make bench` (see docs/benchmarks.md).",
        "",
        "| Section | Figure | Value | Target | Verdict | Conditions |",
        "|---|---|---|---|---|---|",
    ]
    for f in data["figures"]:
        cells = [
            f["section"],
            f["name"],
            _show(f["value"], f["unit"]),
            f["target"],
            _verdict(f["met"]),
            f["conditions"].replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for title, rows in data["tables"].items():
        if not rows:
            continue
        columns = list(rows[0])
        lines += ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    if data["notes"]:
        lines += ["", "## Notes", ""] + [f"* {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value).replace("|", "\\|")
