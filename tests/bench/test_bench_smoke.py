"""The benchmark suite, cut to seconds (`python -m benchmarks --smoke`), so it cannot rot; and the
results writer. The full suite is `make bench`; no timing is asserted here, only that every section ran
and produced its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.procs import metric_value
from benchmarks.report import Figure, Report
from tests.infra import require_binary

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[2]


def test_results_table_says_met_and_missed_with_conditions(tmp_path: Path) -> None:
    report = Report()
    report.add(Figure("2 ingest", "throughput", 5123.4, "events/s", ">= 5,000", True, "wrk | 30 s"))
    report.add(Figure("4 probing", "cycle", 2.5, "s", "<= 2 s", False, "1,000 instances"))
    report.tables["per fault"] = [{"fault": "hang", "detected_s": None, "repairs": ["L3 restart"]}]
    md, js = report.write(tmp_path)
    text = md.read_text()
    assert "| 2 ingest | throughput | 5,123 events/s | >= 5,000 | met | wrk \\| 30 s |" in text
    assert "| 4 probing | cycle | 2.50 s | <= 2 s | **missed** | 1,000 instances |" in text
    assert "| hang | — | L3 restart |" in text
    data = json.loads(js.read_text())
    assert [f["met"] for f in data["figures"]] == [True, False]


def test_metric_value_sums_one_metric_only() -> None:
    text = (
        'watchdog_pending_messages{instance="a"} 3.0\nwatchdog_pending_messages{instance="b"} 4.0\n'
        "watchdog_pending_messages_extra 100.0\nwatchdog_pending_evictions_total 7.0\n"
    )
    assert metric_value(text, "watchdog_pending_messages") == 7.0
    assert metric_value(text, "watchdog_pending_messages", 'instance="b"') == 4.0


def _figures(data: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["value"] for f in data["figures"]}


def test_smoke_suite_runs_every_section(tmp_path: Path, docker_engine: Any) -> None:
    require_binary("wrk", "wrk")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["smoke"] is True and not data["notes"], data["notes"]
    figures = _figures(data)
    for name in (
        "classification throughput",
        "idle RSS",
        "watchdog webhook throughput",
        "bare Starlette + uvicorn endpoint throughput",
        "daemon CPU while following a container",
        "one probe cycle over 50 instances",
    ):
        assert isinstance(figures[name], float) and figures[name] > 0, name
    watchdog_rows = data["tables"]["Detection and repair: the watchdog"]
    assert watchdog_rows[0]["detected_s"] is not None and watchdog_rows[0]["first_reply_s"] is not None
    baseline_rows = {
        r["fault"]: r for r in data["tables"][next(t for t in data["tables"] if "baseline" in t)]
    }
    assert baseline_rows["evolution hang"]["noticed_s (scaled)"] is not None  # GET / stops answering
    assert baseline_rows["evolution socket_closed"]["noticed_s (scaled)"] is None  # GET / still answers
    assert "| Section | Figure |" in (tmp_path / "latest.md").read_text()
