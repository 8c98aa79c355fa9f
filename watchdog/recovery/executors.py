"""The hands of the recovery engine. Every action verifies its own result (state read back, never an
HTTP 200 trusted) and returns an Outcome; failures are outcomes, not exceptions. Never logout, never
delete an instance."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from watchdog.clients.evolution import EvolutionClient
from watchdog.clock import Clock
from watchdog.errors import UpstreamError
from watchdog.recovery.planner import FAILED, OK
from watchdog.recovery.sessions import reset_contact
from watchdog.signals.logwatch import daemon_answers, docker_client

POLL_SECONDS = 0.25
RESTART_SETTLE_SECONDS = 2.0  # see EvolutionExecutor.restart_instance
RESTART_REFUSAL_RETRIES = 4  # restarts refused in the state flicker of a retrying instance; see _restart_call
FLICKER_READS = 8  # state reads (POLL_SECONDS apart) looking for `connecting` after a refusal
DOCKER_CALL_SECONDS = 10.0  # docker_client's per-call timeout


@dataclass(frozen=True)
class Outcome:
    result: str  # ok | failed
    detail: str

    @classmethod
    def ok(cls, detail: str) -> Outcome:
        return cls(OK, detail)

    @classmethod
    def failed(cls, detail: str) -> Outcome:
        return cls(FAILED, detail)


class EvolutionExecutor:
    def __init__(
        self,
        client: EvolutionClient,
        clock: Clock,
        *,
        open_deadline: float,
        fallback_message: str,
        request_timeout: float,
        settle: float = RESTART_SETTLE_SECONDS,
    ) -> None:
        self.client = client
        self.clock = clock
        self.open_deadline = open_deadline
        self.fallback_message = fallback_message
        self.request_timeout = request_timeout
        self.settle = min(settle, open_deadline / 2)

    @property
    def restart_deadline(self) -> float:
        """The verify timeout, plus the restart call and the last state read."""
        return self.open_deadline + 2 * self.request_timeout + 1

    @property
    def reset_deadline(self) -> float:
        """Five rounds of requests: bots, sessions, changeStatus, sessions again, the fallback reply."""
        return 5 * self.request_timeout + 1

    async def reset_session(
        self, instance: str, remote_jid: str, *, instances: Collection[str] = (), send_fallback: bool
    ) -> Outcome:
        """`changeStatus` delete, through the integration holding the contact (sessions.py): its next
        message starts a fresh bot session. It removes the contact's sessions on every instance: those on
        `instances` (the watched ones) are read first and named in the result; nothing is deleted unread
        on `instance`."""
        ok, gone = await reset_contact(self.client, instance, remote_jid, {instance, *instances})
        if not ok:
            return Outcome.failed(gone)
        if not (send_fallback and self.fallback_message):
            return Outcome.ok(gone)
        try:
            await self.client.send_text(instance, remote_jid, self.fallback_message)
        except UpstreamError as exc:  # the instance cannot send: worth the next rung
            return Outcome.failed(f"{gone}; the fallback reply failed: {exc.message}")
        return Outcome.ok(f"{gone}; fallback reply sent")

    async def restart_instance(self, instance: str) -> Outcome:
        """`instance/restart`, then poll `connectionState` until open or the deadline.

        Evolution 2.3.6 `src/api/controllers/instance.controller.ts` restartInstance (lines 332-359) calls
        `client.ws.close()` and `client.end(new Error('restart'))`, then answers through
        `connectToWhatsapp`, which still reads the old state: the answer, and a read right after it, can
        say `open` before the close reaches `connectionUpdate` (in whatsapp.baileys.service.ts
        `eventHandler` it waits behind `await this.findSettings()`). So `open` proves the restart only
        after a non-open state was read since the call, or once `settle` seconds have passed: the stale
        state is long gone by then, and a reconnect (createClient: auth state, the WhatsApp Web version
        fetch, the socket) shows `close`/`connecting` until it is done. A state read that fails is no
        evidence either way."""
        try:
            body = await self._restart_call(instance)
        except UpstreamError as exc:
            return Outcome.failed(exc.message)
        if body.get("error") is True:  # HTTP 200 with an error body: upstream's way of failing
            return Outcome.failed(_refused(body))
        called = self.clock.monotonic()
        deadline = called + self.open_deadline
        state: str | None = None
        went: str | None = None  # the first non-open state read since the call
        while True:
            with contextlib.suppress(UpstreamError):
                state = await self.client.connection_state(instance)
                waited = self.clock.monotonic() - called
                if state == "open" and went is not None:
                    return Outcome.ok(f"restarted; connection state went {went}, then open")
                if state == "open" and waited >= self.settle:
                    return Outcome.ok(f"restarted; connection state open {waited:.1f}s after the call")
                if state in ("close", "connecting") and went is None:
                    went = state
            if self.clock.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_SECONDS)
        return Outcome.failed(f"still {state or 'unknown'} {self.open_deadline:g}s after the restart")

    async def _restart_call(self, instance: str) -> dict[str, Any]:
        """`instance/restart`, asked again while the instance is retrying its connection.

        restartInstance acts only when the live state is `open` or `connecting` and refuses otherwise
        (HTTP 200 `{"error":true}`). While Baileys retries, the live state on the real 2.3.6 alternates
        between `connecting` and `close` in stretches of a few seconds, so a refusal is that alternation
        when the state reads `connecting` within a couple of seconds: ask again right then."""
        body = await self.client.restart(instance)
        for _ in range(RESTART_REFUSAL_RETRIES):
            if body.get("error") is not True or not await self._reads_connecting(instance):
                break
            body = await self.client.restart(instance)
        return body

    async def _reads_connecting(self, instance: str) -> bool:
        """True as soon as `connectionState` says `connecting` (read for about two seconds)."""
        for _ in range(FLICKER_READS):
            with contextlib.suppress(UpstreamError):
                if await self.client.connection_state(instance) == "connecting":
                    return True
            await asyncio.sleep(POLL_SECONDS)
        return False


def _refused(body: dict[str, Any]) -> str:
    message = " ".join(str(body.get("message") or "").split())[:120]
    if message in ("", "[object Object]"):  # upstream stringifies its BadRequestException
        message = "the instance is close or not loaded (upstream refuses both)"
    return f"restart refused: HTTP 200 with an error body: {message}"


class DockerExecutor:
    """Restart containers by name through the Docker API at `url` (unix:// or tcp://, a socket proxy
    included), then verify they run and the service answers.

    A connect-only check comes first: docker-py leaks a socket on every refused connect, so an engine
    that is away is found out without going through the SDK."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        stop_timeout: int,
        ready_deadline: float,
        ready_checks: Mapping[str, Callable[[], Awaitable[bool]]],
    ) -> None:
        self.url = url
        self.clock = clock
        self.stop_timeout = stop_timeout
        self.ready_deadline = ready_deadline
        self.ready_checks = ready_checks

    def deadline(self, containers: Sequence[str]) -> float:
        """Each container's restart (its stop timeout plus the API calls), then the readiness wait."""
        calls = DOCKER_CALL_SECONDS
        return len(containers) * (self.stop_timeout + 2 * calls) + self.ready_deadline + 2 * calls + 1

    async def restart(self, service: str, containers: Sequence[str]) -> Outcome:
        if not containers:
            return Outcome.failed(f"no containers configured for {service}")
        if not await asyncio.to_thread(daemon_answers, self.url):
            return Outcome.failed("Docker: the engine is not answering")
        try:
            ids = await asyncio.to_thread(self._restart_all, containers)
        except docker.errors.NotFound as exc:
            return Outcome.failed(f"container missing: {exc.explanation or exc}")
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            return Outcome.failed(f"Docker: {type(exc).__name__}: {str(exc)[:120]}")
        ready = self.ready_checks.get(service)
        deadline = self.clock.monotonic() + self.ready_deadline
        while self.clock.monotonic() < deadline:
            running = await asyncio.to_thread(self._all_running, containers)
            if running and (ready is None or await ready()):
                return Outcome.ok(f"restarted {', '.join(ids)}; running and answering")
            await asyncio.sleep(POLL_SECONDS)
        return Outcome.failed(
            f"{', '.join(containers)} not running and answering {self.ready_deadline:g}s after restart"
        )

    def _restart_all(self, names: Sequence[str]) -> list[str]:
        client = docker_client(self.url)
        try:
            restarted = []
            for name in names:
                container = client.containers.get(name)  # by name: a recreated container is found too
                container.restart(timeout=self.stop_timeout)  # also starts one that was stopped or restarting
                restarted.append(f"{name} ({container.short_id})")
            return restarted
        finally:
            client.close()

    def _all_running(self, names: Sequence[str]) -> bool:
        if not daemon_answers(self.url):
            return False
        client = docker_client(self.url)
        try:
            return all(client.containers.get(name).status == "running" for name in names)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return False
        finally:
            client.close()


class CommandExecutor:
    """A configured shell command per service (PM2, systemd) for installs without Docker. It runs in a
    process group of its own, so a timeout or a cancelled action ends everything the command started."""

    def __init__(self, commands: Mapping[str, str], *, timeout: float) -> None:
        self.commands = commands
        self.timeout = timeout

    @property
    def deadline(self) -> float:
        return self.timeout + 2

    async def restart(self, service: str) -> Outcome:
        command = self.commands.get(service, "")
        if not command:
            return Outcome.failed(f"no restart command configured for {service}")
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_shell(
                command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        )
        try:
            # Cancelled inside the spawn, asyncio would kill the shell alone and wait on the pipe its
            # children still hold; let the spawn finish, then end the whole group.
            process = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            with contextlib.suppress(OSError):
                started = await spawn
                _kill_group(started.pid)
                await started.communicate()
            raise
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            _kill_group(process.pid)
            await process.communicate()  # reaped and its pipe drained: nothing left for the GC to warn about
            return Outcome.failed(f"restart command timed out after {self.timeout:g}s")
        except asyncio.CancelledError:
            _kill_group(process.pid)
            await process.communicate()  # the same on the way out; SIGKILL makes it quick
            raise
        tail = output.decode(errors="replace").strip()[-200:]
        if process.returncode != 0:
            return Outcome.failed(f"restart command exited {process.returncode}: {tail}")
        return Outcome.ok(f"restart command succeeded{': ' + tail if tail else ''}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # the shell's session: its pid is the group's id
