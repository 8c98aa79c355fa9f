"""The demo on machines whose Docker engine answers but cannot run its containers (Docker Desktop, a
remote engine): it falls back to child processes and says why in one line. The refusing engines are a
loopback fake of the Engine API answering as those engines do; the engine that can is the real one."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.demo.backend import choose_backend
from watchdog.demo.containers import ContainerEmulators
from watchdog.demo.emulators import ProcessEmulators
from watchdog.serving import ThreadedServer

pytestmark = pytest.mark.integration
# Docker Desktop for Mac's answer to a bind mount outside its shared folders (verbatim, newlines included).
MOUNTS_DENIED = (
    "Mounts denied: \nThe path /usr/lib is not shared from the host and is not known to Docker.\n"
    "You can configure shared paths from Docker -> Preferences... -> Resources -> File Sharing.\n"
    "See https://docs.docker.com/desktop/mac for more info."
)


@dataclass
class FakeEngine:
    """Answers /_ping and /version like any engine; `refuse` decides how containers fail."""

    refuse: str
    url: str = ""
    calls: list[str] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def any_call(request: Request) -> Response:
            method, path = request.method, "/" + request.path_params["path"].split("/", 1)[-1]
            self.calls.append(f"{method} {path}")
            if path == "/version":
                return JSONResponse(
                    {"ApiVersion": "1.43", "Version": "24.0.7", "Os": "linux", "Arch": "amd64"}
                )
            if path == "/_ping":
                return Response("OK", media_type="text/plain")
            if method == "GET" and path.startswith("/images/"):
                return JSONResponse({"message": "No such image"}, status_code=404)
            if path == "/images/create":
                return JSONResponse({"status": "sha256:" + "0" * 64})
            if method == "DELETE":
                return Response(status_code=204) if "/containers/" in path else JSONResponse([])
            if path == "/containers/create":
                return self.create(await request.json(), request.query_params["name"])
            name = path.split("/")[2]
            if path.endswith("/json"):
                return JSONResponse({"Id": name, "Name": "/" + name, "Config": {"Tty": False}, "State": {}})
            if path.endswith("/start"):
                if self.refuse == "desktop":
                    return JSONResponse({"message": MOUNTS_DENIED}, status_code=500)
                return Response(status_code=204)
            if path.endswith("/wait"):
                return JSONResponse({"StatusCode": {"vm-network": 5, "crash": 127}.get(self.refuse, 0)})
            if path.endswith("/logs"):
                line = b"exec /usr/bin/python3: exec format error\n"
                return Response(bytes([2, 0, 0, 0]) + len(line).to_bytes(4, "big") + line)
            return JSONResponse({"message": f"unexpected {method} {path}"}, status_code=500)

        return Starlette(routes=[Route("/{path:path}", any_call, methods=["GET", "POST", "DELETE"])])

    def create(self, body: dict[str, Any], name: str) -> Response:
        self.created.append(body)
        if self.refuse == "remote":  # a remote engine: this machine's paths do not exist there
            source = body["HostConfig"]["Binds"][0].split(":")[0]
            message = f'invalid mount config for type "bind": bind source path does not exist: {source}'
            return JSONResponse({"message": message}, status_code=400)
        return JSONResponse({"Id": name, "Warnings": []}, status_code=201)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Iterator[FakeEngine]:
    fake = FakeEngine(refuse=request.param)
    with ThreadedServer(fake.app()) as server:
        fake.url = server.url.replace("http://", "tcp://")
        yield fake


REFUSALS = {
    "remote": 'it refused a test container: invalid mount config for type "bind": bind source path',
    "desktop": "it refused a test container: Mounts denied: The path /usr/lib is not shared from the host",
    "vm-network": "cannot reach this machine's loopback",
    "elsewhere": "do not arrive here (the engine runs elsewhere)",
    "crash": "exited with status 127: exec /usr/bin/python3: exec format error",
}


@pytest.mark.parametrize("engine", list(REFUSALS), indirect=True)
def test_an_engine_that_cannot_run_the_containers_means_child_processes(
    engine: FakeEngine, tmp_path: Path
) -> None:
    emulators, reason = choose_backend(tmp_path, 0.5, processes=False, docker_url=engine.url)
    assert isinstance(emulators, ProcessEmulators)
    prefix = f"the Docker engine at {engine.url} answers but cannot run the demo's containers: "
    assert reason.startswith(prefix) and REFUSALS[engine.refuse] in reason, reason
    assert "\n" not in reason and len(reason) < 400
    # The probe asked for what the emulators need: the host's network, the scratch directory read-write.
    (body,) = engine.created
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert f"{tmp_path}:{tmp_path}:rw" in body["HostConfig"]["Binds"]
    # And nothing is left on the engine: the probe container and the run's image are removed.
    assert any(c.startswith("DELETE /containers/evo-watchdog-demo-probe-") for c in engine.calls)
    assert any(c.startswith("DELETE /images/evo-watchdog-demo-base:") for c in engine.calls)


def test_an_engine_that_can_run_them_keeps_the_containers(docker_engine: Any, tmp_path: Path) -> None:
    emulators, reason = choose_backend(
        tmp_path, 0.5, processes=False, docker_url="unix:///var/run/docker.sock"
    )
    try:
        assert isinstance(emulators, ContainerEmulators), reason
        assert reason.startswith("a Docker engine answers at unix:///var/run/docker.sock"), reason
        assert not docker_engine.containers.list(all=True, filters={"name": "evo-watchdog-demo-probe-"})
        assert not list(tmp_path.iterdir())  # the probe's marker is gone too
    finally:
        emulators.stop()


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@pytest.mark.parametrize("engine", ["desktop"], indirect=True)
def test_the_demo_says_why_it_uses_child_processes(engine: FakeEngine) -> None:
    """`python -m watchdog demo` with DOCKER_HOST at Docker Desktop's refusal: one line of why, then
    child processes; SIGTERM still ends it cleanly."""
    env = {**os.environ, "DOCKER_HOST": engine.url, "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHDOG_DOCKER_URL", None)
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "watchdog", "demo", "--fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as demo:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True)
        reader.start()
        try:
            while not any(line.startswith("Emulators:") for line in seen):
                seen.append(lines.get(timeout=60))
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(timeout=60)
            reader.join(10)
        seen.extend(lines.queue)
        err = demo.stderr.read() if demo.stderr else ""
    out = "".join(seen)
    assert seen[0].startswith("Backend: child processes"), out
    why = next(line for line in seen if line.startswith("(the Docker engine at"))
    assert why.startswith(
        f"(the Docker engine at {engine.url} answers but cannot run the demo's containers: "
    )
    assert "it refused a test container: Mounts denied: The path /usr/lib is not shared from the host" in why
    assert demo.returncode == 130 and "nothing left running" in out, out + err
    assert "Traceback" not in err, err
