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
        timeout=600,
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
        "one probe cycle over 50 instances, all seven bot integrations on",
    ):
        assert isinstance(figures[name], float) and figures[name] > 0, name
    tables = data["tables"]
    ours = {
        r["fault"]: r
        for r in tables[next(t for t in tables if t.startswith("Faults at the defaults: watch"))]
    }
    theirs = {r["fault"]: r for r in tables[next(t for t in tables if "baseline" in t)]}
    # The socket: the watchdog restarts the instance; GET / still answers, so the baseline is blind
    assert ours["a WhatsApp socket closes"]["first action"] == "restart_instance", ours
    assert theirs["a WhatsApp socket closes"]["noticed_s"] is None, theirs
    # A hung Evolution: both notice; the baseline's HEALTHCHECK needs its three failed checks
    assert ours["Evolution hangs"]["first action"] == "restart_container evolution", ours
    assert theirs["Evolution hangs"]["first action"] == "restart_container evolution", theirs
    assert "| Section | Figure |" in (tmp_path / "latest.md").read_text()
