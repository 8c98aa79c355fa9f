"""One-shot log reading for `check`: what each container wrote since it started (at most an hour).

Some faults show only in logs (a WhatsApp logout, Dify's errors as Evolution's DifyService printed them,
gunicorn killing a stuck worker), so `check` reads them back instead of following them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import docker
import docker.errors
import requests.exceptions

from watchdog.clock import Clock
from watchdog.model import Finding, ProbeResult
from watchdog.signals.logrules import RecordAssembler, classify
from watchdog.signals.logstate import LogState, container_target
from watchdog.signals.logwatch import (
    MISSING,
    UNREACHABLE,
    daemon_answers,
    docker_client,
    parse_docker_timestamp,
)

HISTORY_SECONDS = 3600


def read_logs(docker_url: str, containers: Sequence[str], state: LogState, clock: Clock) -> list[ProbeResult]:
    """Blocking: feed each container's recent records into `state`; one result per container."""
    if not daemon_answers(docker_url):
        for name in containers:
            state.follower(name, UNREACHABLE, f"nothing answers at {docker_url}")
        return [_result(clock, name, False, f"Docker unreachable at {docker_url}") for name in containers]
    client = docker_client(docker_url)
    try:
        return [_read_one(client, name, state, clock) for name in containers]
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _read_one(client: docker.DockerClient, name: str, state: LogState, clock: Clock) -> ProbeResult:
    try:
        container = client.containers.get(name)
        started_ns = parse_docker_timestamp(str(container.attrs["State"]["StartedAt"]))
        since = max(started_ns // 1_000_000_000, int(time.time()) - HISTORY_SECONDS)
        raw = client.api.logs(container.id, timestamps=True, since=since, stream=False)
    except docker.errors.NotFound:
        state.follower(name, MISSING, f"no container named {name}")
        return _result(clock, name, False, f"no container named {name}")
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, ValueError) as exc:
        state.follower(name, UNREACHABLE, type(exc).__name__)
        return _result(clock, name, False, f"cannot read logs: {type(exc).__name__}")
    assembler = RecordAssembler()
    lines = 0
    head_at: float | None = None  # when the record being assembled began
    now_mono, now_ns = clock.monotonic(), time.time_ns()
    for line in raw.decode("utf-8", errors="replace").splitlines():
        stamp, _, text = line.partition(" ")
        try:
            at_ns = parse_docker_timestamp(stamp)
        except ValueError:
            continue
        if at_ns < started_ns:  # Docker's `since` has whole seconds; the previous run is not news
            continue
        at = now_mono - (now_ns - at_ns) / 1e9
        lines += 1
        done = assembler.feed(text)
        if done is not None:
            state.record(name, classify(done), at=head_at)
        if done is not None or head_at is None:
            head_at = at
    last = assembler.flush()
    if last is not None:
        state.record(name, classify(last), at=head_at)
    return _result(
        clock, name, True, f"{lines} log lines since it started (at most {HISTORY_SECONDS // 60} min)"
    )


def _result(clock: Clock, name: str, ok: bool, detail: str) -> ProbeResult:
    return ProbeResult(container_target(name), "logs", ok, 0.0, clock.time(), detail)


async def log_findings(
    docker_url: str, containers: Sequence[str], state: LogState, clock: Clock
) -> tuple[list[ProbeResult], list[Finding]]:
    results = await asyncio.to_thread(read_logs, docker_url, containers, state, clock)
    return results, state.findings(lambda seconds: False)  # silence needs a live follow, not a snapshot
