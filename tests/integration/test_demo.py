"""The README's first command: `demo --fast` runs end to end; every fault it injects is detected and
repaired by the watchdog itself, at the ladder level and on the target expected for it, with nothing more
forceful (read from its JSON summary). Once with real containers under the Docker engine (L3 through the
Docker API), once with child processes (L3 through the command backend); either way nothing is left
running. The demo runs the shipped defaults times one factor, and its report tells what was seen, never
what was expected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchdog.config import SETTINGS, Settings
from watchdog.demo import demo_settings
from watchdog.demo.emulators import HEARTBEAT_SETTINGS, ProcessEmulators
from watchdog.demo.phases import CUSTOMER_PACE, DIFY_FORGETS, DIFY_HANGS, FACTOR, scaled
from watchdog.demo.report import Outcome, print_summary, summary_json

pytestmark = pytest.mark.integration
FAST_PHASES = [
    "instance socket closes",
    "Dify forgets conversations",
    "Dify hangs",
    "processor dies, quiet night",
]


def run_demo(tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    summary_file = tmp_path / "demo.json"
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "demo", "--fast", "--json", str(summary_file), *flags],
        capture_output=True,
        text=True,
        timeout=240,  # the demo's own budget ends it sooner (--fast: about 80 s), failing or not
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
        assert phase["seen"] and phase["finding"] in phase["expected_findings"], phase
        assert phase["detected_after_seconds"] is not None and phase["recovered_after_seconds"] is not None
        assert phase["expected_level"] in phase["levels_ok"], phase
        assert phase["overreach"] == [] and phase["as_expected"], phase
    expected = {p["fault"]: (p["expected_level"], p["expected_target"]) for p in summary["phases"]}
    assert expected == {
        "instance socket closes": (2, "instance:loja"),
        "Dify forgets conversations": (1, "contact:"),
        "Dify hangs": (3, "service:dify"),
        "processor dies, quiet night": (3, "service:evolution"),
    }
    night = summary["phases"][-1]
    assert night["finding"] == "e2e_not_received"  # only the heartbeat can see it: nobody else writes
    heartbeat = summary["heartbeat"]
    assert heartbeat["enabled"] and heartbeat["interval_seconds"] == pytest.approx(300 * FACTOR)
    assert heartbeat["instances"]["loja"]["result"] in ("ok", "e2e_not_received"), heartbeat
    legs = heartbeat["legs_mean_seconds"]["loja"]  # heartbeats came back before the night
    assert set(legs) == {"received", "replied", "delivered", "round_trip"} and legs["round_trip"] > 0
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


def test_the_demo_runs_the_shipped_defaults_times_one_factor(tmp_path: Path) -> None:
    """Every duration is its default times FACTOR; every other setting is as shipped, but for where the
    emulators are and how to restart them, where to listen and journal, and two features turned on."""
    emulators = ProcessEmulators(tmp_path, traffic_interval=scaled(CUSTOMER_PACE), time_scale=FACTOR)
    demo, shipped = demo_settings(emulators, tmp_path), Settings.from_env({})
    plumbing = {
        *emulators.connection_env(),
        *emulators.watchdog_env(),
        "WATCHDOG_LISTEN",
        "WATCHDOG_STATE_PATH",
    }
    assert (demo.recovery_mode, bool(demo.fallback_message)) == ("auto", True)
    assert (demo.e2e_from_instance, demo.e2e_to_number) == ("prober", (("loja", "5511990000001"),))
    plumbing |= {"WATCHDOG_RECOVERY_MODE", "WATCHDOG_FALLBACK_MESSAGE", *HEARTBEAT_SETTINGS}
    scaled_ones = 0
    for spec in SETTINGS:
        if spec.env in plumbing:
            continue
        default = getattr(shipped, spec.attr)
        if spec.env.endswith("_SECONDS"):
            assert getattr(demo, spec.attr) == pytest.approx(default * FACTOR), spec.env
            scaled_ones += bool(default)
        else:
            assert getattr(demo, spec.attr) == default, spec.env
    assert scaled_ones >= 10 and demo.probe_interval_seconds == pytest.approx(1.5)
    assert emulators.time_scale == FACTOR and emulators.traffic_interval == pytest.approx(
        CUSTOMER_PACE * FACTOR
    )


def test_a_phase_whose_finding_was_not_seen_is_reported_as_not_seen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Recovered by the right restart, yet the watchdog never reported `dify_down`: the report says
    "not seen", never the expected kind, and the demo fails."""
    unseen = Outcome(DIFY_HANGS, None, None, 12.0, ["L3 restart_container service:dify ok"])
    seen = Outcome(DIFY_FORGETS, "stale_conversation", 4.6, 19.5, ["L1 reset_session contact:loja:c-1 ok"])
    summary = summary_json([seen, unseen], backend="processes", fast=True, restarts={}, turns={})
    assert summary["ok"] is False
    good, bad = summary["phases"]
    assert good["as_expected"] is True and good["finding"] == "stale_conversation"
    assert bad["finding"] is None and bad["seen"] is False and bad["as_expected"] is False
    assert bad["detected_after_seconds"] is None and bad["levels_ok"] == [3]
    print_summary([seen, unseen], "processes", {"dify": 1})
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("Dify hangs")]
    assert row.split()[2:4] == ["not", "seen"] and "missed" in row and "✗ dify_down not seen" in row
    assert row.count("dify_down") == 1  # only in the verdict that names what was missing


def test_another_finding_or_more_force_than_needed_is_not_as_expected() -> None:
    other = Outcome(DIFY_HANGS, "evolution_down", 3.0, 12.0, ["L3 restart_container service:dify ok"])
    assert not other.seen and not other.ok and other.as_dict()["finding"] == "evolution_down"
    actions = ["L3 restart_container service:evolution ok", "L3 restart_container service:dify ok"]
    wrong_restart = Outcome(DIFY_HANGS, "dify_down", 3.0, 12.0, actions)
    assert wrong_restart.repaired and wrong_restart.overreach() == actions[:1] and not wrong_restart.ok
    paged = Outcome(DIFY_FORGETS, "stale_conversation", 4.0, 20.0, ["L1 reset_session contact:loja:c-1 ok"])
    paged.actions.append("L4 page contact:loja:c-1 undelivered")
    assert paged.repaired and not paged.ok and paged.as_dict()["overreach"] == [paged.actions[1]]
    no_repair = Outcome(DIFY_HANGS, "dify_down", 3.0, 12.0, ["L1 reset_session contact:loja:c-1 ok"])
    assert no_repair.seen and not no_repair.repaired and not no_repair.ok
