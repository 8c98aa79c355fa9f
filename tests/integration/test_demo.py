"""The README's first command: `demo --fast` runs end to end; every fault it injects is detected and
repaired by the watchdog itself, at the ladder level expected for it (read from its JSON summary).
Once with real containers under the Docker engine (L3 through the Docker API), once with child
processes (L3 through the command backend); either way nothing is left running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration
FAST_PHASES = [
    "instance socket closes",
    "Dify forgets conversations",
    "Dify hangs",
    "the message processor dies",
]


def run_demo(tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    summary_file = tmp_path / "demo.json"
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "demo", "--fast", "--json", str(summary_file), *flags],
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = completed.stdout
    assert completed.returncode == 0, out + completed.stderr
    assert "Summary" in out and "replies" in out and "Traceback" not in completed.stderr
    assert "nothing left running" in out
    summary = json.loads(summary_file.read_text())
    for url in summary["emulators"].values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
    return summary, out


def assert_every_fault_repaired_as_expected(summary: dict[str, Any]) -> None:
    assert summary["fast"] is True and summary["ok"] is True
    assert [p["fault"] for p in summary["phases"]] == FAST_PHASES
    for phase in summary["phases"]:
        assert phase["finding"] in phase["expected_findings"], phase
        assert phase["detected_after_seconds"] is not None and phase["recovered_after_seconds"] is not None
        assert phase["expected_level"] in phase["levels_ok"], phase
        assert phase["as_expected"], phase
    expected = {p["fault"]: p["expected_level"] for p in summary["phases"]}
    assert expected == {
        "instance socket closes": 2,
        "Dify forgets conversations": 1,
        "Dify hangs": 3,
        "the message processor dies": 3,
    }
    assert summary["emulator_restarts"]["dify"] >= 1 and summary["emulator_restarts"]["evolution"] >= 1
    assert summary["turnaround"]["text"]["replies"] > 0


def test_demo_fast_with_containers_repairs_every_fault_through_the_docker_api(
    docker_engine: Any, tmp_path: Path
) -> None:
    summary, out = run_demo(tmp_path)
    assert summary["backend"] == "docker" and "Backend: Docker containers" in out
    assert_every_fault_repaired_as_expected(summary)
    restarts = [a for p in summary["phases"] for a in p["actions"] if a.startswith("L3 restart_container")]
    assert restarts and all(a.endswith(" ok") for a in restarts)
    run = re.search(r"evo-watchdog-demo-([0-9a-f]+)-dify", out)
    assert run is not None, out
    names = {f"evo-watchdog-demo-{run[1]}-{service}" for service in ("evolution", "dify")}
    left = {c.name for c in docker_engine.containers.list(all=True, filters={"label": "evo-watchdog-demo"})}
    assert not names & left  # removed, as is the run's image
    assert not docker_engine.images.list(name=f"evo-watchdog-demo-base:{run[1]}")


def test_demo_fast_with_child_processes_repairs_every_fault_through_the_command_backend(
    tmp_path: Path,
) -> None:
    summary, out = run_demo(tmp_path, "--processes")
    assert summary["backend"] == "processes" and "Backend: child processes" in out
    assert_every_fault_repaired_as_expected(summary)
    assert "evolution" in out and "restarted by the command backend" in out
