"""The README's first command: the demo runs end to end; every fault it injects is detected and
repaired by the watchdog itself, at the ladder level expected for it (read from its JSON summary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_detects_and_repairs_every_fault_at_the_expected_level(tmp_path: Path) -> None:
    summary_file = tmp_path / "demo.json"
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "demo", "--json", str(summary_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr
    summary = json.loads(summary_file.read_text())
    phases = {p["finding"]: p for p in summary["phases"]}
    assert list(phases) == [
        "instance_disconnected",
        "stale_conversation",
        "session_wedged",
        "dify_down",
        "evolution_down",
        "inbound_stopped",
    ]
    for finding, phase in phases.items():
        assert phase["as_expected"], (finding, phase)
    assert summary["emulator_restarts"]["dify"] >= 1 and summary["emulator_restarts"]["evolution"] >= 2
    assert "Summary" in out and "replies" in out and "Traceback" not in completed.stderr
