"""Chaos: the REAL wall clock of a running daemon steps an hour back, then an hour forward (NTP).

`python -m watchdog run` runs under libfaketime (Debian's `faketime`), whose offset is read from a file
on every call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1), so the test steps the process's
CLOCK_REALTIME while it runs; FAKETIME_DONT_FAKE_MONOTONIC=1 leaves CLOCK_MONOTONIC alone, as an NTP
step does. Probe cycles (from /api/status), canary runs and recovery turns (the daemon's own "job ...
ran" lines) are counted over a window after each step: they keep their pace, neither paused nor bunched.
Under the APScheduler interval jobs this replaced, the step back stopped every job for the hour.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.infra import free_port, missing, require_binary
from tests.integration.stack import running_stack, wait_until

pytestmark = pytest.mark.integration

HOUR = 3600
WINDOW = 8.0  # seconds counted after each step
PROBE_EVERY = 1.0
CANARY_EVERY = 2.0


def libfaketime() -> str:
    require_binary("faketime", "faketime")
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        missing("libfaketime.so.1 not found: install Debian's faketime (scripts/install-system-deps.sh)")
    return found[0]


@contextmanager
def daemon_under_faketime(env: dict[str, str], offset: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    offset.write_text("+0\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}  # FAKETIME beats the file
    faked = {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run"],
            env={**clean, **env, **faked},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def runs(log: Path, start: int) -> dict[str, int]:
    """Jobs that ran (and were skipped) per name in the daemon's log from byte `start` on."""
    text = log.read_bytes()[start:].decode(errors="replace")
    counts = {name: text.count(f"job {name} ran in") for name in ("probes", "canary", "recovery")}
    return counts | {"skipped": text.count(" skipped: ")}


def wall_offset(response: httpx.Response) -> float:
    """How far the daemon's wall clock is from this process's: its HTTP `Date` header minus now."""
    return parsedate_to_datetime(response.headers["date"]).timestamp() - time.time()


def test_probes_canary_and_recovery_keep_their_pace_through_real_wall_clock_steps(tmp_path: Path) -> None:
    """Expected, for a step back of an hour and then a step forward of an hour: in the 8 s after each,
    at least 5 and at most 10 probe cycles (1 s interval), 3 to 6 canary runs (2 s), 5 to 10 recovery
    turns, no job skipped, /healthz ok; the daemon's own stamps show that its wall clock did step."""
    port = free_port()
    offset, log = tmp_path / "faketime.rc", tmp_path / "watchdog.log"
    with running_stack() as stack:
        env = stack.env(
            WATCHDOG_LISTEN=f"127.0.0.1:{port}",
            WATCHDOG_PROBE_INTERVAL_SECONDS=str(PROBE_EVERY),
            WATCHDOG_CANARY_INTERVAL_SECONDS=str(CANARY_EVERY),
            WATCHDOG_LOG_LEVEL="DEBUG",
        )
        with (
            daemon_under_faketime(env, offset, log) as process,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
        ):

            def status() -> dict[str, object]:
                assert process.poll() is None, log.read_text(errors="replace")[-4000:]
                return dict(client.get("/api/status").json())

            def answering() -> bool:
                try:
                    return int(status()["cycles"]) >= 2  # type: ignore[call-overload]
                except httpx.TransportError:
                    return False

            wait_until(answering, timeout=30, what="the daemon's first probe cycles")
            assert abs(wall_offset(client.get("/healthz"))) < 30  # not stepped yet
            seen = []
            for step, expected_offset in (("-3600", -HOUR), ("+0", 0)):
                offset.write_text(step + "\n")
                cycles, start = int(status()["cycles"]), log.stat().st_size  # type: ignore[call-overload]
                time.sleep(WINDOW)
                health = client.get("/healthz")
                seen.append(
                    {
                        "step": step,
                        "cycles": int(status()["cycles"]) - cycles,  # type: ignore[call-overload]
                        "offset": round(wall_offset(health)),
                        "healthz": health.status_code,
                        **runs(log, start),
                    }
                )
                assert abs(wall_offset(health) - expected_offset) < 30, seen  # the step reached the daemon
    for window in seen:
        assert 5 <= window["cycles"] <= WINDOW / PROBE_EVERY + 2, seen
        assert 5 <= window["probes"] <= WINDOW / PROBE_EVERY + 2, seen
        assert 3 <= window["canary"] <= WINDOW / CANARY_EVERY + 2, seen
        assert 5 <= window["recovery"] <= WINDOW / PROBE_EVERY + 2, seen
        assert window["skipped"] == 0 and window["healthz"] == 200, seen
