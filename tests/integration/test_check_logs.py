"""`check` reads container logs for faults the API hides: a dead message processor in a real container."""

from __future__ import annotations

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

pytestmark = pytest.mark.integration
KEY = "container-evolution-key"


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


def test_dead_processor_is_found_in_the_logs_and_gone_after_a_restart(
    docker_engine: Any, tmp_path: Path
) -> None:
    name = "evo-watchdog-test-evolution"
    port = free_port()
    command = ["-m", "watchdog", "sim", "evolution", "--port", str(port), "--api-key", KEY]
    dockerkit.run_python(docker_engine, name, command, tmp_path)
    url = f"http://127.0.0.1:{port}"
    env = {"EVOLUTION_URL": url, "EVOLUTION_API_KEY": KEY, "EVOLUTION_CONTAINER": name, "DIFY_URL": ""}
    try:
        wait_up(url)
        httpx.post(url + "/_sim/faults", json={"name": "processor_dead"}).raise_for_status()
        inbound = {"instance": "loja", "remoteJid": "5511987600001@s.whatsapp.net", "text": "Oi"}
        assert httpx.post(url + "/_sim/inbound", json=inbound).json() == {"outcome": "lost"}
        code, report = check(env)
        kinds = {f["kind"] for f in report["findings"]}
        assert code == 1 and "processor_dead" in kinds, report["findings"]
        assert "instance_disconnected" not in kinds  # the API still says open: only the logs tell
        logs = next(p for p in report["probes"] if p["probe"] == "logs")
        assert logs["ok"] and logs["target"] == f"container:{name}"
        docker_engine.containers.get(name).restart(timeout=5)  # the L3 repair: a fresh process
        wait_up(url)
        assert httpx.post(url + "/_sim/inbound", json=inbound).json() == {"outcome": "delivered"}
        code, report = check(env)
        assert code == 0, report["findings"]
    finally:
        dockerkit.remove(docker_engine, name)


def test_missing_container_is_reported(docker_engine: Any) -> None:
    code, report = check({"EVOLUTION_URL": "http://127.0.0.1:9", "EVOLUTION_CONTAINER": "evo-watchdog-nope"})
    kinds = {f["kind"] for f in report["findings"]}
    assert code == 1 and {"container_missing", "evolution_down"} <= kinds
