"""deploy/socket-proxy/haproxy.cfg in a real haproxy in front of the real Docker engine.

Everything the watchdog does passes (its own DockerExecutor and log follower included); everything
else is refused by the proxy with 403 and provably never reaches dockerd.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from tests.e2e import deploykit
from tests.integration import dockerkit
from watchdog.clock import SystemClock
from watchdog.recovery.executors import DockerExecutor
from watchdog.signals.logwatch import FOLLOWING, ContainerFollower, LogLine, docker_client

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


def wait_until(condition: Any, what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def proxy(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with deploykit.socket_proxy(tmp_path_factory.mktemp("haproxy")) as url:
        yield url


@pytest.fixture(scope="module")
def target(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running container (local empty base image, host interpreter bind-mounted) printing log lines."""
    with deploykit.log_printer(docker_engine, tmp_path_factory.mktemp("target")) as name:
        yield name


def started_at(engine: Any, name: str) -> str:
    return str(engine.containers.get(name).attrs["State"]["StartedAt"])


def test_watchdog_calls_pass(docker_engine: Any, proxy: str, target: str) -> None:
    client = docker.DockerClient(base_url=proxy, version="auto", timeout=30)  # GET /version, unversioned
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"]
        assert target in [c.name for c in client.containers.list()]
        container = client.containers.get(target)
        assert container.attrs["Config"]["Labels"][dockerkit.LABEL] == "1"
        wait_until(lambda: b"seq=" in client.api.logs(container.id, tail=5), "log lines through the proxy")
        before = started_at(docker_engine, target)
        since = int(time.time()) - 1
        container.restart(timeout=2)
        assert started_at(docker_engine, target) != before  # read directly from the engine
        events = client.events(since=since, until=int(time.time()) + 1, decode=True)
        actions = {
            e.get("Action") for e in events if e.get("Actor", {}).get("Attributes", {}).get("name") == target
        }
        assert "restart" in actions, actions
    finally:
        client.close()


FORBIDDEN = [
    ("POST", "/v1.40/containers/create"),
    ("POST", "/containers/create"),
    ("POST", "/v1.40/containers/{name}/exec"),
    ("POST", "/v1.40/containers/{name}/kill"),
    ("POST", "/v1.40/containers/{name}/stop"),
    ("POST", "/v1.40/containers/{name}/start"),
    ("POST", "/v1.40/containers/{name}/attach"),
    ("POST", "/v1.40/containers/{name}/update"),
    ("DELETE", "/v1.40/containers/{name}"),
    ("GET", "/v1.40/containers/{name}/archive"),
    ("GET", "/v1.40/containers/{name}/export"),
    ("POST", "/v1.40/images/create"),
    ("GET", "/v1.40/images/json"),
    ("POST", "/v1.40/build"),
    ("POST", "/v1.40/networks/create"),
    ("GET", "/v1.40/volumes"),
    ("GET", "/v1.40/info"),
    ("GET", "/v1.40/secrets"),
    ("POST", "/v1.40/swarm/init"),
    ("POST", "/v1.40/containers/{name}/json"),  # a read path with a write method
    ("GET", "/v1.40/containers/{name}/restart"),  # the write path with a read method
    ("GET", "/v1.40/containers/../images/json"),
    ("GET", "/v1.40/containers/%2e%2e/images/json"),
    ("POST", "/v1.40/containers/{name}/restart/../kill"),
    ("POST", "//v1.40/containers/{name}/kill"),
    ("POST", "/v1.40/exec/abc/start"),
    ("POST", "/v1.40/containers/{name}/restart%2F..%2Fkill"),
]


def raw_request(url: str, method: str, path: str) -> tuple[int, str]:
    """One request with the path sent byte for byte (HTTP clients normalise dot segments)."""
    host, port = url.removeprefix("tcp://").split(":")
    body = b"{}" if method == "POST" else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.decode(errors="replace").partition("\r\n")
    return int(status_line.split()[1]), rest


def test_everything_else_is_refused_before_dockerd(docker_engine: Any, proxy: str, target: str) -> None:
    before = docker_engine.containers.get(target).attrs["State"]
    passed = []
    for method, path in FORBIDDEN:
        status, rest = raw_request(proxy, method, path.format(name=target))
        if status != 403 or "Request forbidden" not in rest:
            passed.append((method, path, status))
    assert not passed, f"not refused by the proxy: {passed}"
    after = docker_engine.containers.get(target).attrs["State"]
    assert after["Running"] and after["StartedAt"] == before["StartedAt"]  # kill/stop/restart... never ran
    status, rest = raw_request(proxy, "GET", f"/v1.40/containers/{target}/json")
    assert status == 200 and target in rest  # the same raw client does get through where allowed


def test_the_docker_sdk_cannot_create_exec_kill_delete_pull_or_network(
    docker_engine: Any, proxy: str, target: str
) -> None:
    client = docker_client(proxy)
    names = [f"evo-watchdog-deploy-refused-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    labels = {dockerkit.LABEL: "1"}  # should the proxy let one through, the session cleanup removes it
    try:
        container = client.containers.get(target)
        attempts: dict[str, Callable[[], object]] = {
            "create": lambda: client.containers.create(
                dockerkit.BASE_IMAGE, ["/x"], name=names[0], labels=labels
            ),
            "run": lambda: client.containers.run(
                dockerkit.BASE_IMAGE, ["/x"], name=names[1], labels=labels, detach=True
            ),
            "exec": lambda: container.exec_run(["/x"]),
            "kill": lambda: container.kill(),
            "stop": lambda: container.stop(timeout=1),
            "delete": lambda: container.remove(force=True),
            "pull": lambda: client.images.pull("busybox", tag="latest"),
            "images": lambda: client.images.list(),
            "network": lambda: client.networks.create(f"evo-watchdog-deploy-{uuid.uuid4().hex[:6]}"),
        }
        allowed = []
        for what, attempt in attempts.items():
            try:
                attempt()
                allowed.append(what)
            except docker.errors.APIError as exc:
                assert exc.status_code == 403, (what, exc)
        assert not allowed, f"the proxy let these through: {allowed}"
        for name in names:  # read directly from the engine: nothing was created
            with pytest.raises(docker.errors.NotFound):
                docker_engine.containers.get(name)
        assert docker_engine.containers.get(target).status == "running"
    finally:
        client.close()
        for name in names:
            dockerkit.remove(docker_engine, name)


def test_watchdog_executor_and_log_follower_work_through_the_proxy(
    docker_engine: Any, proxy: str, target: str
) -> None:
    lines: list[LogLine] = []
    states: list[str] = []
    lock = threading.Lock()

    def on_line(line: LogLine) -> None:
        with lock:
            lines.append(line)

    def count() -> int:
        with lock:
            return len(lines)

    follower = ContainerFollower(
        proxy, target, on_line=on_line, on_state=lambda _n, s, _d: states.append(s), start_ns=time.time_ns()
    )
    follower.start()
    try:
        wait_until(lambda: count() >= 5, "lines followed through the proxy")
        assert FOLLOWING in states
        executor = DockerExecutor(
            proxy,
            SystemClock(),
            stop_timeout=2,
            ready_deadline=DEADLINE,
            ready_checks={},
        )
        before = started_at(docker_engine, target)
        outcome = asyncio.run(executor.restart("evolution", [target]))
        assert outcome.result == "ok", outcome
        assert started_at(docker_engine, target) != before
        seen = count()
        wait_until(lambda: count() >= seen + 5, "lines after the restart, still through the proxy")
        assert all(line.container == target for line in lines)
    finally:
        follower.stop()
