"""The hands of the recovery engine. Every action verifies its own result (state read back, never an
HTTP 200 trusted) and returns an Outcome; failures are outcomes, not exceptions. Never logout, never
delete an instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

from watchdog.clients.evolution import EvolutionClient
from watchdog.clock import Clock
from watchdog.errors import UpstreamError
from watchdog.recovery.planner import FAILED, OK
from watchdog.signals.logwatch import daemon_answers, docker_client

POLL_SECONDS = 0.25


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
        self, client: EvolutionClient, clock: Clock, *, open_deadline: float, fallback_message: str
    ) -> None:
        self.client = client
        self.clock = clock
        self.open_deadline = open_deadline
        self.fallback_message = fallback_message

    async def reset_session(self, instance: str, remote_jid: str, *, send_fallback: bool) -> Outcome:
        """`dify/changeStatus` delete: the contact's next message starts a fresh Dify conversation."""
        try:
            await self.client.change_dify_status(instance, remote_jid, "delete")
            for bot in await self.client.dify_bots(instance):
                if any(s.remote_jid == remote_jid for s in await self.client.dify_sessions(instance, bot.id)):
                    return Outcome.failed("the session is still there after changeStatus delete")
            if send_fallback and self.fallback_message:
                await self.client.send_text(instance, remote_jid, self.fallback_message)
                return Outcome.ok("session deleted; fallback reply sent")
        except UpstreamError as exc:
            return Outcome.failed(exc.message)
        return Outcome.ok("session deleted")

    async def restart_instance(self, instance: str) -> Outcome:
        """`instance/restart`, then poll `connectionState` until open or the deadline."""
        try:
            body = await self.client.restart(instance)
        except UpstreamError as exc:
            return Outcome.failed(exc.message)
        if body.get("error") is True:  # HTTP 200 with an error body: upstream's way of failing
            return Outcome.failed(f"restart refused: {str(body.get('message'))[:120]}")
        deadline = self.clock.monotonic() + self.open_deadline
        state: str | None = None
        while self.clock.monotonic() < deadline:
            with contextlib.suppress(UpstreamError):
                state = await self.client.connection_state(instance)
                if state == "open":
                    return Outcome.ok("restarted; connection state open")
            await asyncio.sleep(POLL_SECONDS)
        return Outcome.failed(f"still {state or 'unknown'} {self.open_deadline:g}s after the restart")


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
    """A configured shell command per service (PM2, systemd) for installs without Docker."""

    def __init__(self, commands: Mapping[str, str], *, timeout: float) -> None:
        self.commands = commands
        self.timeout = timeout

    async def restart(self, service: str) -> Outcome:
        command = self.commands.get(service, "")
        if not command:
            return Outcome.failed(f"no restart command configured for {service}")
        process = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            return Outcome.failed(f"restart command timed out after {self.timeout:g}s")
        tail = output.decode(errors="replace").strip()[-200:]
        if process.returncode != 0:
            return Outcome.failed(f"restart command exited {process.returncode}: {tail}")
        return Outcome.ok(f"restart command succeeded{': ' + tail if tail else ''}")
