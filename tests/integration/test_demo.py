"""The README's first command: the demo runs end to end, detects every fault it injects, and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_detects_every_fault_and_sees_health_return() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "demo"], capture_output=True, text=True, timeout=180
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr
    summary = out[out.index("Summary") :]
    for finding in (
        "instance_disconnected",
        "stale_conversation",
        "session_wedged",
        "dify_down",
        "evolution_down",
        "inbound_stopped",
    ):
        assert finding in summary
    assert "missed" not in summary and " no\n" not in summary
    assert "replies" in out and "Traceback" not in completed.stderr
