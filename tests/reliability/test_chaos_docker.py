"""Chaos for the L3 rung on a real Docker engine: the container recreated under its name, the engine away."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration import dockerkit
from watchdog.clock import SystemClock
from watchdog.recovery.executors import DockerExecutor

pytestmark = pytest.mark.integration
SLEEPER = ["-c", "import time; time.sleep(600)"]


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def executor() -> DockerExecutor:
    return DockerExecutor(
        dockerkit.DOCKER_URL,
        SystemClock(),
        stop_timeout=1,
        ready_deadline=20,
        ready_checks={},
    )


async def test_a_recreated_container_is_restarted_by_its_name_not_its_old_id(
    docker_engine: Any, tmp_path: Path
) -> None:
    name = "evo-watchdog-test-recreated"
    old_id = dockerkit.run_python(docker_engine, name, SLEEPER, tmp_path).id
    new = dockerkit.run_python(docker_engine, name, SLEEPER, tmp_path)  # compose up: same name, new id
    new.reload()
    started_before = new.attrs["State"]["StartedAt"]
    try:
        outcome = await executor().restart("evolution", [name])
        new.reload()
    finally:
        dockerkit.remove(docker_engine, name)
    assert new.id != old_id
    assert outcome.result == "ok" and f"{name} ({new.short_id})" in outcome.detail
    assert new.status == "running" and new.attrs["State"]["StartedAt"] != started_before


async def test_a_restart_while_the_engine_is_away_fails_at_once_and_works_once_it_is_back(
    docker_engine: Any, tmp_path: Path
) -> None:
    dockerkit.require_own_daemon()
    name = "evo-watchdog-test-engine-away"
    dockerkit.run_python(docker_engine, name, SLEEPER, tmp_path)
    l3 = executor()
    dockerkit.stop_daemon()  # its containers stop with it (no restart policy, no live-restore)
    docker_engine.close()
    try:
        fds_before = open_fds()
        began = time.monotonic()
        away = await l3.restart("evolution", [name])
        away_seconds = time.monotonic() - began
        fds_after = open_fds()
    finally:
        dockerkit.start_daemon()
    try:
        stopped = docker_engine.containers.get(name).status
        back = await l3.restart("evolution", [name])
        status = docker_engine.containers.get(name).status
    finally:
        dockerkit.remove(docker_engine, name)
    assert away.result == "failed" and away.detail.startswith("Docker: ")
    assert fds_after == fds_before  # docker-py would have leaked the socket of its refused connect
    assert away_seconds < 15  # the client's own 10 s timeout bounds it; a refused socket fails at once
    assert stopped != "running"
    assert back.result == "ok" and status == "running"
