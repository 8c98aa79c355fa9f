"""`check` reads a real container's log for what the API hides: a WhatsApp logout, and Dify's errors that
Evolution's DifyService printed (Dify's fault, not Evolution's); a restarted container's old log is old."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import dockerkit
from watchdog.serving import free_port
from watchdog.sim.logfmt import SimLog

pytestmark = pytest.mark.integration
KEY = "container-evolution-key"
# Evolution 2.3.6's own lines in its colour mode, written by the emulators' logger (byte for byte what
# logger.config.ts prints): monitor.service.ts:386, and dify.service.ts:316 printing Dify's 500 body five
# times (WATCHDOG_LOG_BURST_COUNT's default).
DIFY_500 = {
    "code": "internal_server_error",
    "message": "Internal Server Error, please contact support.",
    "status": 500,
}


def evolution_log() -> str:
    out = io.StringIO()
    log = SimLog(out, color=True, pid=1)
    log.evolution("WARN", "WAMonitoringService", 'Instance "vendas" - LOGOUT')
    for _ in range(5):
        log.evolution("ERROR", "DifyService", DIFY_500)
    return out.getvalue()


# The emulator serves the API (its instance `loja` connects, and says so); the lines above are printed
# once, before it starts, on the first run only.
LAUNCH = """
import pathlib, runpy, sys
lines, mark = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[1] + ".printed")
if not mark.exists():
    mark.write_text("1")
    print(lines.read_text(), flush=True)
sys.argv = ["watchdog", *sys.argv[2:]]
runpy.run_module("watchdog", run_name="__main__")
"""


def wait_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def check(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-m", "watchdog", "check", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return completed.returncode, json.loads(completed.stdout)


def test_logout_and_difys_errors_are_read_from_the_log_and_old_news_after_a_restart(
    docker_engine: Any, tmp_path: Path
) -> None:
    name = "evo-watchdog-test-evolution"
    port = free_port()
    lines = tmp_path / "evolution.log"
    lines.write_text(evolution_log())
    sim = ["sim", "evolution", "--port", str(port), "--api-key", KEY]
    dockerkit.run_python(docker_engine, name, ["-c", LAUNCH, str(lines), *sim], tmp_path)
    url = f"http://127.0.0.1:{port}"
    env = {"EVOLUTION_URL": url, "EVOLUTION_API_KEY": KEY, "EVOLUTION_CONTAINER": name, "DIFY_URL": ""}
    try:
        wait_up(url)
        code, report = check(env)
        found = {(f["kind"], f["target"]) for f in report["findings"]}
        assert code == 1 and ("logged_out", "evolution:vendas") in found, report["findings"]
        assert "instance_disconnected" not in {kind for kind, _ in found}  # the API still says open
        (burst,) = [f for f in report["findings"] if f["kind"] == "error_burst"]
        assert burst["evidence"] == {"rule": "dify_error", "count": 5, "container": name, "service": "dify"}
        logs = next(p for p in report["probes"] if p["probe"] == "logs")
        assert logs["ok"] and logs["target"] == f"container:{name}"
        docker_engine.containers.get(name).restart(timeout=5)
        wait_up(url)
        code, report = check(env)
        assert code == 0, report["findings"]
    finally:
        dockerkit.remove(docker_engine, name)


def test_missing_container_is_reported(docker_engine: Any) -> None:
    code, report = check({"EVOLUTION_URL": "http://127.0.0.1:9", "EVOLUTION_CONTAINER": "evo-watchdog-nope"})
    kinds = {f["kind"] for f in report["findings"]}
    assert code == 1 and {"container_missing", "evolution_down"} <= kinds
