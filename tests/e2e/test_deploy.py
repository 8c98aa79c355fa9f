"""deploy/Dockerfile built by the real engine from a locally made base image, offline, then run."""

from __future__ import annotations

import contextlib
import io
import re
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import pytest

from tests.e2e import deploykit
from tests.infra import free_port

pytestmark = pytest.mark.e2e

DEADLINE = 120.0  # generous: the machine may be loaded


@pytest.fixture(scope="module")
def built_image(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = deploykit.python_base_image(docker_engine)
    wheelhouse = deploykit.make_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))
    tag = f"evo-watchdog-deploy-test:{uuid.uuid4().hex[:12]}"
    made: list[str] = []
    try:
        made = deploykit.build_image(
            docker_engine,
            tag,
            deploykit.build_context(wheelhouse),
            {"BASE_IMAGE": base, "WHEELHOUSE": "wheelhouse"},
        )
        yield tag
    finally:
        deploykit.remove_images(docker_engine, tag, made)


def wait_for(condition: Any, what: str, container: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if result := condition():
                return result
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    logs = container.logs().decode(errors="replace")[-3000:]
    raise AssertionError(f"{what} did not happen; container {container.status}; logs:\n{logs}")


def test_context_keeps_secrets_and_checkout_state_out(tmp_path: Path) -> None:
    """The repository's .dockerignore, applied to a checkout holding everything a real one may hold."""
    wanted = ["pyproject.toml", "README.md", "watchdog/commands/cli.py", "wheelhouse/x-1.0-py3-none-any.whl"]
    unwanted = [".env", "prod.env", "watchdog-state.db", ".venv/bin/python", ".git/config", "tests/t.py"]
    unwanted += [
        "watchdog/__pycache__/cli.cpython-311.pyc",
        "docs/runbook.md",
        "deploy/compose.watchdog.yaml",
    ]
    for rel in wanted + unwanted:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    sent = set(deploykit.context_files(tmp_path))
    assert set(wanted) <= sent
    assert not sent & set(unwanted), sorted(sent & set(unwanted))
    assert "watchdog/commands/cli.py" in deploykit.context_files()  # and the real checkout


@pytest.fixture
def proxy_and_target(docker_engine: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with (
        deploykit.socket_proxy(tmp_path) as proxy,
        deploykit.log_printer(docker_engine, tmp_path) as target,
    ):
        yield proxy, target


def test_image_runs_as_non_root_and_answers_healthz(
    docker_engine: Any, built_image: str, proxy_and_target: tuple[str, str]
) -> None:
    """Run as the compose overlay runs it: hardened, Docker only through the socket proxy."""
    proxy, target = proxy_and_target
    config = docker_engine.images.get(built_image).attrs["Config"]
    assert config["Cmd"] == ["evo-watchdog", "run"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert "/data" in (config.get("Volumes") or {})
    assert config["Healthcheck"]["Test"][0] == "CMD"

    port, dead = free_port(), free_port()
    name = f"evo-watchdog-deploy-run-{uuid.uuid4().hex[:8]}"
    container = docker_engine.containers.run(
        built_image,
        name=name,
        detach=True,
        network_mode="host",
        labels={deploykit.LABEL: "1"},
        environment={
            "WATCHDOG_LISTEN": f"0.0.0.0:{port}",
            "EVOLUTION_URL": f"http://127.0.0.1:{dead}",  # nothing listens: probes fail, the loop runs
            "WATCHDOG_PROBE_INTERVAL_SECONDS": "2",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "1",
            "WATCHDOG_WEBHOOK_TOKEN": "deploy-test-token",  # required when listening beyond loopback
            "WATCHDOG_DOCKER_URL": proxy,
            "EVOLUTION_CONTAINER": target,
        },
        # Hardened as deploy/compose.watchdog.yaml runs it; /data is the image's volume.
        read_only=True,
        tmpfs={"/tmp": ""},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        # The image's own test command, run every second instead of every 30 s.
        healthcheck={"interval": 1_000_000_000, "timeout": 5_000_000_000, "start_period": 60_000_000_000},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for(
            lambda: httpx.get(f"{url}/healthz", timeout=3).status_code == 200, "/healthz", container
        )
        assert health
        body = httpx.get(f"{url}/healthz", timeout=3).json()
        assert body["status"] == "ok", body
        assert "watchdog_build_info" in httpx.get(f"{url}/metrics", timeout=5).text
        read = re.compile(rf'^watchdog_log_lines_total{{container="{target}"}} ([0-9.e+]+)$', re.M)

        def lines_read() -> bool:
            found = read.search(httpx.get(f"{url}/metrics", timeout=5).text)
            return found is not None and float(found[1]) > 0

        wait_for(lines_read, f"log lines of {target} read through the socket proxy", container)
        uid = deploykit.container_uid(container)
        assert uid == int(config["User"].split(":")[0]) and uid != 0

        def healthy() -> bool:
            container.reload()
            return bool(container.attrs["State"]["Health"]["Status"] == "healthy")

        wait_for(healthy, "the image's HEALTHCHECK to pass", container)
        wait_for(lambda: _has_file(container, "/data/watchdog-state.db"), "the journal in /data", container)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)  # with its anonymous /data volume


def _has_file(container: Any, path: str) -> bool:
    try:
        chunks, _ = container.get_archive(path)
    except docker.errors.NotFound:
        return False
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return any(member.isfile() and member.size > 0 for member in tar.getmembers())


def test_healthcheck_fails_when_nothing_answers(docker_engine: Any, built_image: str) -> None:
    """The image's HEALTHCHECK command must be able to fail: pointed at a port nobody serves."""
    port = free_port()
    name = f"evo-watchdog-deploy-idle-{uuid.uuid4().hex[:8]}"
    container = docker_engine.containers.run(
        built_image,
        ["python", "-c", "import time; time.sleep(600)"],
        name=name,
        detach=True,
        network_mode="host",
        labels={deploykit.LABEL: "1"},
        environment={"WATCHDOG_LISTEN": f"127.0.0.1:{port}"},
        healthcheck={
            "interval": 1_000_000_000,
            "timeout": 5_000_000_000,
            "retries": 1,
            "start_period": 1_000_000,
        },
    )
    try:

        def unhealthy() -> bool:
            container.reload()
            return bool(container.attrs["State"].get("Health", {}).get("Status") == "unhealthy")

        wait_for(unhealthy, "the HEALTHCHECK to report unhealthy", container)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
