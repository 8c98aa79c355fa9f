"""A real Docker engine for tests: no registry pulls, no bridge networks.

The base image is empty (`docker import` of an empty tar); containers get the host's interpreter, this
checkout and a scratch directory bind-mounted, and use host networking.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from watchdog.demo import hostimage
from watchdog.demo.hostimage import import_empty_image, remove_container, run_host_python

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "evo-watchdog-test-base:latest"
LABEL = "evo-watchdog-test"
REQUIRE_REAL_INFRA = os.environ.get("WATCHDOG_REQUIRE_REAL_INFRA") == "1"
DOCKER_URL = "unix:///var/run/docker.sock"


def connect() -> docker.DockerClient:
    """The engine, or a skip (a failure when WATCHDOG_REQUIRE_REAL_INFRA=1)."""
    try:
        client = docker.DockerClient(base_url=DOCKER_URL, timeout=30)
        client.ping()
    except Exception as exc:
        message = f"no Docker engine at {DOCKER_URL} ({type(exc).__name__}); run scripts/start-dockerd.sh"
        if REQUIRE_REAL_INFRA:
            pytest.fail(message)
        pytest.skip(message)
    return client


def base_image(client: docker.DockerClient) -> str:
    return import_empty_image(client, BASE_IMAGE)


def host_mounts(scratch: Path) -> dict[str, dict[str, str]]:
    """Read-only: the interpreter and libraries, this checkout (with .venv). Read-write: scratch."""
    return hostimage.host_mounts(scratch, str(ROOT))


def run_python(client: docker.DockerClient, name: str, args: list[str], scratch: Path, **options: Any) -> Any:
    """Start `python args...` in a container named `name` (replacing any leftover of that name)."""
    remove(client, name)
    mounts = host_mounts(scratch)
    return run_host_python(
        client,
        base_image(client),
        name,
        args,
        labels={LABEL: "1"},
        workdir=str(ROOT),
        mounts=mounts,
        **options,
    )


def remove(client: docker.DockerClient, name: str) -> None:
    remove_container(client, name)


def remove_all(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)


def require_own_daemon() -> None:
    """Tests that stop and start the engine need the one scripts/start-dockerd.sh started."""
    if not Path("/var/run/docker.pid").exists():
        pytest.fail("the Docker engine was not started by scripts/start-dockerd.sh (no /var/run/docker.pid)")


def stop_daemon(timeout: float = 30.0) -> None:
    """Stop the engine that scripts/start-dockerd.sh started (its pid is in /var/run/docker.pid)."""
    import signal
    import time

    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise AssertionError("dockerd did not stop")
        time.sleep(0.1)


def start_daemon() -> None:
    import subprocess

    subprocess.run([str(ROOT / "scripts" / "start-dockerd.sh")], check=True, timeout=60)
    connect()
