"""Runs the ladder: findings -> attribution -> plan -> journal -> executors -> journal, notify, metrics.

The only part of recovery that does I/O besides the executors; it writes each action to the journal
before it starts and again when it ends. Actions run in tasks of their own (inflight.py), each with a
deadline derived from its executor's own timeouts: a turn never waits for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import replace

import httpx
from loguru import logger

from watchdog.clients.dify import dify_client_for
from watchdog.clients.evolution import evolution_client_for
from watchdog.clock import Clock, iso
from watchdog.config import Settings
from watchdog.errors import UpstreamError
from watchdog.metrics import Metrics
from watchdog.model import Finding
from watchdog.notify import Notifier
from watchdog.recovery.ack import acknowledge, describe
from watchdog.recovery.attribution import Attribution, grounded
from watchdog.recovery.executors import CommandExecutor, DockerExecutor, EvolutionExecutor, Outcome
from watchdog.recovery.hands import Hands
from watchdog.recovery.inflight import SKIPPED as SKIPPED
from watchdog.recovery.inflight import ActionRunner
from watchdog.recovery.journal import Journal, JournalError
from watchdog.recovery.paging import PAGES_WINDOW, paging_view
from watchdog.recovery.planner import (
    FAILED,
    OK,
    PAGE,
    UNDELIVERED,
    Incident,
    PlannedAction,
    Policy,
    RecoveryPlanner,
    settle_holds,
)
from watchdog.recovery.problems import Problem, problems_from


async def _still_leading() -> bool:
    return True  # a single replica always leads


class RecoveryEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        journal: Journal,
        metrics: Metrics,
        notifier: Notifier,
        evolution: EvolutionExecutor,
        docker: DockerExecutor | None,
        command: CommandExecutor | None,
        on_repaired: Callable[[PlannedAction], None] = lambda action: None,
        watched: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.journal = journal
        self.metrics = metrics
        self.notifier = notifier
        self.on_repaired = on_repaired
        # Before and after each action and after each turn; False = this replica lost the leader lease.
        self.checkpoint: Callable[[], Awaitable[bool]] = _still_leading
        # Instances recovery may act on: configured or reported by Evolution, never taken from a request.
        self.watched = watched or (lambda: frozenset(settings.evolution_instances))
        self.journal_error = ""  # why the journal last failed; recovery is suspended while it fails
        # Wall-clock stamps (the journal outlives the process) that advance with the monotonic clock, so
        # a clock step while running can neither freeze the ladder (backwards) nor skip cooldowns and
        # restart budgets (forwards).
        self._anchor = (clock.time(), clock.monotonic())
        self.hands = Hands(
            evolution=evolution,
            docker=docker,
            command=command,
            containers={
                "evolution": [settings.evolution_container] if settings.evolution_container else [],
                "dify": list(settings.dify_containers),
            },
            notifier=notifier,
            watched=self.watched,
        )
        self.policy = Policy(
            mode=settings.recovery_mode,
            restarts_per_hour=settings.max_restarts_per_hour,
            global_restarts_per_hour=settings.global_restarts_per_hour,
            recovery_hold=settings.recovery_hold_seconds,
            restartable=self.hands.restartable(),
            pager=notifier.enabled,  # without one, a page that reached nobody is not sent again
            # one full probe cycle, the sessions probe's deadline included
            contact_grace=settings.probe_interval_seconds + 4 * settings.probe_timeout_seconds,
            settle_seconds=settings.settle_seconds,
        )
        # One turn (every probe interval) is one cycle of the confirmation count (WATCHDOG_CONFIRM_CYCLES).
        self.attribution = Attribution(
            confirm_cycles=settings.confirm_cycles,
            dify_containers=settings.dify_containers,
            max_gap=3 * settings.probe_interval_seconds,
        )
        self.planner = RecoveryPlanner(self.policy)
        self.runner = ActionRunner(
            journal,
            clock=clock,
            now=self.now,
            checkpoint=lambda: self.checkpoint(),  # late-bound: leadership replaces it
            execute=self.hands.execute,
            deadline=self.hands.deadline,
            report=self._report,
            journal_failing=self._journal_failing,
        )

    def now(self) -> float:
        wall, mono = self._anchor
        return wall + (self.clock.monotonic() - mono)

    def resume(self) -> None:
        try:
            self.policy = replace(self.policy, maintenance_until=self.journal.maintenance_until())
            interrupted = self.journal.resume(self.now(), keep=self.runner.action_ids())
        except JournalError as exc:
            self._journal_failing(exc)
            return
        finally:
            self.planner = RecoveryPlanner(self.policy)
        if interrupted:
            logger.warning(
                "{} recovery action(s) were cut off by a restart; judging them by the problem", interrupted
            )

    def silence_until(self, until: float) -> None:
        """A maintenance window: no actions before `until` (epoch seconds); 0 ends it. It holds in memory
        even when the journal cannot keep it."""
        self.policy = replace(self.policy, maintenance_until=until)
        self.planner = RecoveryPlanner(self.policy)
        logger.info("maintenance {}", f"until {iso(until)}" if until > self.now() else "ended")
        try:
            self.journal.set_maintenance(until)
        except JournalError as exc:
            self._journal_failing(exc)

    async def turn(self, findings: Sequence[Finding]) -> list[PlannedAction]:
        """One turn of the ladder: plan, journal, and start the actions; it never waits for one. A failing
        journal suspends acting (nothing runs unless journaled first) but never detection: on-call is told
        which problems are open, and the state shows as degraded."""
        actions, _ = await self._turn_safely(findings)
        return actions

    async def tick(self, findings: Sequence[Finding]) -> list[PlannedAction]:
        """A turn, then wait for the actions it started: one whole step of the ladder (tools, tests)."""
        actions, started = await self._turn_safely(findings)
        await asyncio.gather(*started, return_exceptions=True)
        return actions

    async def stop(self) -> None:
        """At shutdown: cancel the actions in flight; each is journaled `interrupted`."""
        await self.runner.stop()

    async def _turn_safely(
        self, findings: Sequence[Finding]
    ) -> tuple[list[PlannedAction], list[asyncio.Task[None]]]:
        started: list[asyncio.Task[None]] = []
        try:
            actions = await self._turn(findings, started)
        except JournalError as exc:
            problems = problems_from(findings, dify_containers=self.settings.dify_containers)
            self._alert_degraded(exc, self._watched([p for p in problems if grounded(p)]))
            return [], started
        if self.journal_error:
            logger.info("journal writable again; recovery resumed")
            self.journal_error = ""
        return actions, started

    def _watched(self, problems: Sequence[Problem]) -> list[Problem]:
        """Problems recovery may act on: none about an instance it does not watch."""
        watched = self.watched()
        return [p for p in problems if not p.instance or p.instance in watched]

    async def _turn(
        self, findings: Sequence[Finding], started: list[asyncio.Task[None]]
    ) -> list[PlannedAction]:
        self.runner.flush()
        now = self.now()
        holds = settle_holds(self.journal.recent_actions(now - 3600), self.policy.settle_seconds)
        problems = self._watched(self.attribution.cycle(findings, holds, now))
        plan = self.journal.plan(self.planner, problems, now)
        for incident in plan.opened:
            logger.warning("incident opened: {} ({})", incident.key, incident.summary)
            self.notifier.post(incident.key, "opened", f"Incident: {incident.key}", incident.summary)
        for incident in plan.closed:
            self._recovered(incident)
        for action in plan.actions:
            task = self.runner.start(action)
            if task is not None:
                started.append(task)
        self._publish_open()
        await self.checkpoint()
        return plan.actions

    def standby(self) -> None:
        """Another replica leads: it reports the open incidents, this one none."""
        self.metrics.incident_open.clear()

    def _publish_open(self) -> None:
        counts: dict[str, int] = {}
        for incident in self.journal.open_incidents().values():
            target = f"contact:{incident.instance}" if incident.key.startswith("contact:") else incident.key
            counts[target] = counts.get(target, 0) + 1
        self.metrics.incident_open.clear()
        for target, count in counts.items():
            self.metrics.incident_open.labels(target=target).set(count)

    def _recovered(self, incident: Incident) -> None:
        took = (incident.closed_at or self.now()) - incident.opened_at
        logger.info("incident recovered: {} after {:.0f}s", incident.key, took)
        body = f"{incident.key} healthy again; {took:.0f}s from detection to recovery"
        self.notifier.post(
            incident.key,
            f"recovered@{incident.opened_at}",
            f"Recovered: {incident.key}",
            body,
            level="success",
        )

    def _report(self, action: PlannedAction, outcome: Outcome, took: float) -> None:
        """After an action ended (journaled already): repaired hook, metrics, log line, notification."""
        if outcome.result == OK and action.kind != PAGE:
            self.on_repaired(action)
        label = action.target if not action.target.startswith("contact:") else f"contact:{action.instance}"
        self.metrics.recovery_actions.labels(action=action.kind, target=label, result=outcome.result).inc()
        self.metrics.recovery_duration.labels(action=action.kind).observe(took)
        logger.log(
            "WARNING" if outcome.result in (FAILED, UNDELIVERED) else "INFO",
            "recovery L{} {} on {}: {} ({})",
            int(action.level),
            action.kind,
            label,
            outcome.result,
            outcome.detail,
        )
        if action.kind != PAGE:
            title = f"L{int(action.level)} {action.kind} on {label}: {outcome.result}"
            self.notifier.post(
                action.incident, f"action:{action.kind}", title, f"{action.reason}. {outcome.detail}"
            )

    def _journal_failing(self, exc: JournalError) -> None:
        if not self.journal_error:
            logger.error("recovery journal failing, recovery suspended until it works: {}", exc)
        self.journal_error = str(exc)
        self.metrics.job_failures.labels(job="journal").inc()

    def _alert_degraded(self, exc: JournalError, problems: Sequence[Problem]) -> None:
        """Tell on-call once per set of open problems (the notifier deduplicates repeats)."""
        self._journal_failing(exc)
        keys = ", ".join(sorted(p.key for p in problems)) or "none"
        self.notifier.post(
            "watchdog:journal",
            f"failing:{keys}",
            "Watchdog journal failing: recovery suspended",
            f"{exc}. Open problems: {keys}",
            level="critical",
        )

    async def acknowledge(self, key: str) -> Incident:
        """A person looked at a paged incident: its circuit closes and its ladder starts again (budgets
        still hold). Raises UnknownIncident, NotPaged, or JournalError when the ack cannot be kept."""
        now = self.now()
        try:
            incident = acknowledge(self.journal, key, now)
        except JournalError as exc:
            self._journal_failing(exc)
            raise
        logger.info("incident acknowledged: {}; {}", key, describe(incident))
        self.notifier.post(key, f"acknowledged@{now}", f"Acknowledged: {key}", describe(incident))
        return incident

    def history(self) -> list[dict[str, object]]:
        """Recent incidents for /api/status; empty (and degraded) when the journal cannot be read."""
        try:
            return list(self.journal.history())
        except JournalError as exc:
            self._journal_failing(exc)
            return []

    def view(self) -> dict[str, object]:
        until = self.policy.maintenance_until
        mono = self.clock.monotonic()
        return {
            "mode": self.policy.mode,
            "maintenance_until": iso(until) if until > self.now() else None,
            "restartable": sorted(self.policy.restartable),
            "journal": f"failing: {self.journal_error}" if self.journal_error else "ok",
            "in_flight": [
                {"kind": f.action.kind, "target": f.action.target, "running_for": round(mono - f.started, 1)}
                for f in self.runner.in_flight()
            ],
            "pages": self.pages(),
        }

    def pages(self) -> dict[str, object]:
        """Whether a page can reach anyone, and the recent pages that did not (recovery/paging.py)."""
        try:
            unreached = self.journal.unreached_pages(self.now() - PAGES_WINDOW)
        except JournalError as exc:
            self._journal_failing(exc)
            unreached = {}
        return paging_view(self.hands.notifier.nobody(), unreached, mode=self.policy.mode)


def build_engine(
    settings: Settings,
    *,
    clock: Clock,
    http: httpx.AsyncClient,
    metrics: Metrics,
    on_repaired: Callable[[PlannedAction], None] = lambda action: None,
    watched: Callable[[], Collection[str]] | None = None,
) -> RecoveryEngine:
    """The engine with the executors the settings allow (Docker when containers are named, commands when
    set); the Evolution and Dify answers double as the readiness checks after a container restart."""
    evolution_client = evolution_client_for(http, settings)
    dify_client = dify_client_for(http, settings)

    async def evolution_ready() -> bool:
        try:
            await evolution_client.instances()
        except UpstreamError:
            return False
        return True

    async def dify_ready() -> bool:
        if dify_client is None:
            return True
        try:
            await dify_client.liveness()
        except UpstreamError:
            return False
        return True

    url = settings.docker_url
    docker = (
        DockerExecutor(
            url,
            clock,
            stop_timeout=10,
            ready_deadline=settings.restart_timeout_seconds,
            ready_checks={"evolution": evolution_ready, "dify": dify_ready},
        )
        if settings.containers
        else None
    )
    commands = {"evolution": settings.restart_command_evolution, "dify": settings.restart_command_dify}
    command = (
        CommandExecutor(commands, timeout=settings.restart_timeout_seconds)
        if any(commands.values())
        else None
    )
    return RecoveryEngine(
        settings,
        clock=clock,
        journal=Journal(settings.state_path),
        metrics=metrics,
        notifier=Notifier(settings.notify_urls, clock),
        evolution=EvolutionExecutor(
            evolution_client,
            clock,
            open_deadline=settings.restart_timeout_seconds,
            fallback_message=settings.fallback_message,
            request_timeout=settings.probe_timeout_seconds,
        ),
        docker=docker,
        command=command,
        on_repaired=on_repaired,
        watched=watched,
    )
