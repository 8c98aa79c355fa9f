"""Following real containers through a real Docker engine: restarts, recreation, daemon outages."""

from __future__ import annotations

import gc
import re
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration import dockerkit
from watchdog.signals.logwatch import FOLLOWING, UNREACHABLE, ContainerFollower, LogLine, docker_client

pytestmark = pytest.mark.integration

SEQ = re.compile(r"seq=(\d+)")
PRINTER = str(dockerkit.ROOT / "tests" / "containers" / "printer.py")


class Collected:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self.states: list[str] = []
        self.lock = threading.Lock()

    def on_line(self, line: LogLine) -> None:
        with self.lock:
            self.lines.append(line)

    def on_state(self, name: str, state: str, detail: str) -> None:
        with self.lock:
            self.states.append(state)

    def seqs(self) -> list[int]:
        with self.lock:
            return [int(m[1]) for line in self.lines if (m := SEQ.search(line.text))]

    def wait(self, condition: Any, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what} did not happen; states {self.states}, last seqs {self.seqs()[-5:]}"
                )
            time.sleep(0.05)


def engine() -> docker.DockerClient:
    return docker_client(dockerkit.DOCKER_URL)


def follower(client: Any, name: str, got: Collected) -> ContainerFollower:
    f = ContainerFollower(
        dockerkit.DOCKER_URL, name, on_line=got.on_line, on_state=got.on_state, start_ns=time.time_ns()
    )
    f.start()
    return f


def test_restart_and_recreate_lose_and_double_nothing(docker_engine: Any, tmp_path: Path) -> None:
    name = "evo-watchdog-test-printer"
    args = [PRINTER, "--state", str(tmp_path / "seq")]
    dockerkit.run_python(docker_engine, name, args, tmp_path)
    got = Collected()
    f = follower(docker_engine, name, got)
    try:
        got.wait(lambda: len(got.seqs()) >= 20, what="first lines")
        docker_engine.containers.get(name).restart(timeout=5)
        seen = len(got.seqs())
        got.wait(lambda: len(got.seqs()) >= seen + 20, what="lines after the restart")
        docker_engine.containers.get(name).stop(timeout=5)
        dockerkit.run_python(docker_engine, name, args, tmp_path)  # recreated: same name, new id
        seen = len(got.seqs())
        got.wait(lambda: len(got.seqs()) >= seen + 20, what="lines from the new container")
        docker_engine.containers.get(name).stop(timeout=5)
        final = int((tmp_path / "seq").read_text())
        got.wait(lambda: got.seqs()[-1] == final - 1, what="the last printed line")
    finally:
        f.stop()
    seqs = got.seqs()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a line was lost or doubled"
    assert len(seqs) >= 60
    assert got.states.count(FOLLOWING) >= 3  # first container, after restart, the recreated one


def test_long_lines_are_cut(docker_engine: Any, tmp_path: Path) -> None:
    name = "evo-watchdog-test-long"
    code = (
        "import sys, time; print('x' * 100000, flush=True); print('short seq=1', flush=True); time.sleep(30)"
    )
    dockerkit.run_python(docker_engine, name, ["-c", code], tmp_path)
    got = Collected()
    f = ContainerFollower(
        dockerkit.DOCKER_URL,
        name,
        on_line=got.on_line,
        on_state=got.on_state,
        start_ns=0,
        max_line=1000,
    )
    f.start()
    try:
        got.wait(lambda: got.seqs() == [1], what="the short line after the long one")
    finally:
        f.stop()
        dockerkit.remove(docker_engine, name)
    assert len(got.lines) == 2 and len(got.lines[0].text) == 1000


# docker-py leaves the sockets of streams cut by a dying daemon for the garbage collector; collect them
# here, where that is expected, instead of in whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_docker_daemon_outage_is_reported_and_survived(docker_engine: Any, tmp_path: Path) -> None:
    dockerkit.require_own_daemon()
    name = "evo-watchdog-test-outage"
    args = [PRINTER, "--state", str(tmp_path / "seq")]
    dockerkit.run_python(docker_engine, name, args, tmp_path, restart_policy={"Name": "always"})
    got = Collected()
    f = follower(docker_engine, name, got)
    try:
        got.wait(lambda: len(got.seqs()) >= 10, what="first lines")
        dockerkit.stop_daemon()
        docker_engine.close()  # its pooled connections died with the daemon
        got.wait(lambda: UNREACHABLE in got.states, what="the outage being reported")
        dockerkit.start_daemon()
        seen = len(got.seqs())
        got.wait(lambda: len(got.seqs()) >= seen + 10, timeout=60, what="lines after the daemon came back")
    finally:
        f.stop()
        gc.collect()
    seqs = got.seqs()
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), "a line was doubled or reordered"
    assert got.states[-1] == FOLLOWING
