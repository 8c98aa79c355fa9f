"""Which executor carries out a planned action, and its deadline: the executor's own timeouts (verify
wait, request timeouts, stop timeout, send attempts) plus the calls around them, so a repair that hangs
past them is abandoned as failed instead of being waited on."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from watchdog.notify import Notifier
from watchdog.recovery.executors import CommandExecutor, DockerExecutor, EvolutionExecutor, Outcome
from watchdog.recovery.planner import (
    RESET_SESSION,
    RESTART_CONTAINER,
    RESTART_INSTANCE,
    UNDELIVERED,
    PlannedAction,
)


class Hands:
    def __init__(
        self,
        *,
        evolution: EvolutionExecutor,
        docker: DockerExecutor | None,
        command: CommandExecutor | None,
        containers: Mapping[str, Sequence[str]],
        notifier: Notifier,
        watched: Callable[[], Collection[str]],
    ) -> None:
        self.evolution = evolution
        self.docker = docker
        self.command = command
        self.containers = containers
        self.notifier = notifier
        self.watched = watched

    def restartable(self) -> frozenset[str]:
        """Services with an L3 executor: containers and a Docker engine, or a restart command."""
        commands = self.command.commands if self.command is not None else {}
        return frozenset(
            s for s in ("evolution", "dify") if (self.containers.get(s) and self.docker) or commands.get(s)
        )

    def deadline(self, action: PlannedAction) -> float:
        if action.kind == RESET_SESSION:
            return self.evolution.reset_deadline
        if action.kind == RESTART_INSTANCE:
            return self.evolution.restart_deadline
        if action.kind == RESTART_CONTAINER:
            containers = self.containers.get(action.service, [])
            if containers and self.docker is not None:
                return self.docker.deadline(containers)
            return self.command.deadline if self.command is not None else 1.0
        notifier = self.notifier  # a page: every attempt with its timeout, and the pauses between them
        pauses = notifier.retry_delay * float(2 ** max(0, notifier.attempts - 1) - 1)
        return notifier.attempts * notifier.timeout + pauses + 1

    async def execute(self, action: PlannedAction) -> Outcome:
        if action.kind == RESET_SESSION:
            return await self.evolution.reset_session(
                action.instance, action.subject, instances=self.watched(), send_fallback=True
            )
        if action.kind == RESTART_INSTANCE:
            return await self.evolution.restart_instance(action.instance)
        if action.kind == RESTART_CONTAINER:
            containers = self.containers.get(action.service, [])
            if containers and self.docker is not None:
                return await self.docker.restart(action.service, containers)
            if self.command is not None:
                return await self.command.restart(action.service)
            return Outcome.failed(f"no way to restart {action.service}: set its container or restart command")
        return await self.page(action)

    async def page(self, action: PlannedAction) -> Outcome:
        """`ok` once every notify target took it; `failed` when a target refused (sent again after the
        backoff); `undelivered` when there is no target at all: it reached nobody but the log."""
        if not self.notifier.enabled:
            return Outcome(UNDELIVERED, f"reached nobody: {self.notifier.nobody()}")
        delivered = await self.notifier.send(
            action.incident,
            "page",
            f"PAGE: {action.incident}",
            f"{action.reason}. The watchdog stops acting on it until it recovers.",
            level="critical",
        )
        return Outcome.ok("on-call paged") if delivered else Outcome.failed("the page could not be delivered")
