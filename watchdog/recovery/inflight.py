"""Recovery actions in flight: each runs as its own asyncio task with its own deadline, so a slow repair
never holds up the recovery turn, probing, or another target's repair.

The journal row is written before the task starts and updated when it ends (timed out = failed, and the
ladder goes on by its usual rules). A target with an action in flight gets no second one. At shutdown
the tasks are cancelled and journaled `interrupted`, with the incident put back on that rung, exactly as
`Journal.resume` judges an action a dead watchdog left running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from watchdog.clock import Clock
from watchdog.recovery.executors import Outcome
from watchdog.recovery.journal import Journal, JournalError
from watchdog.recovery.planner import DRY_RUN, PAGE, PlannedAction

SKIPPED = "skipped"  # planned, but not run: the leader lease was lost, or its target was still busy


@dataclass(frozen=True)
class InFlight:
    action: PlannedAction
    action_id: int
    started: float  # monotonic
    task: asyncio.Task[None]


class ActionRunner:
    def __init__(
        self,
        journal: Journal,
        *,
        clock: Clock,
        now: Callable[[], float],
        checkpoint: Callable[[], Awaitable[bool]],
        execute: Callable[[PlannedAction], Awaitable[Outcome]],
        deadline: Callable[[PlannedAction], float],
        report: Callable[[PlannedAction, Outcome, float], None],
        journal_failing: Callable[[JournalError], None],
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.now = now
        self.checkpoint = checkpoint
        self.execute = execute
        self.deadline = deadline
        self.report = report
        self.journal_failing = journal_failing
        self._flying: dict[str, InFlight] = {}
        self._unwritten: list[tuple[int, str, str, float]] = []  # results the journal refused, kept to retry

    def in_flight(self) -> list[InFlight]:
        return list(self._flying.values())

    def action_ids(self) -> frozenset[int]:
        return frozenset(f.action_id for f in self._flying.values())

    def start(self, action: PlannedAction) -> asyncio.Task[None] | None:
        """Journal the action, then run it in its own task. A JournalError here means it never ran."""
        key = _slot(action)
        action_id = self.journal.started(action, self.now())
        busy = self._flying.get(key)
        if busy is not None:  # the planner already refuses this; kept as the last guard
            detail = f"not run: {busy.action.kind} on {action.target} is still running"
            self.journal.finished(action_id, SKIPPED, detail, self.now())
            logger.warning("{} on {} {}", action.kind, action.target, detail)
            return None
        task = asyncio.create_task(self._run(action, action_id), name=f"recovery {action.kind} {key}")
        self._flying[key] = InFlight(action, action_id, self.clock.monotonic(), task)
        task.add_done_callback(lambda _: self._flying.pop(key, None))
        return task

    def flush(self) -> None:
        """Write the results the journal refused earlier (raises JournalError while it still fails)."""
        while self._unwritten:
            self.journal.finished(*self._unwritten[0])
            self._unwritten.pop(0)

    async def stop(self) -> None:
        """Cancel every action in flight, then journal each as `interrupted` (a task cancelled before its
        first step never runs any of its own code, so this is done here, not in the task)."""
        flying = list(self._flying.values())
        for f in flying:
            f.task.cancel()
        await asyncio.gather(*(f.task for f in flying), return_exceptions=True)
        for f in flying:
            took = self.clock.monotonic() - f.started
            detail = f"cut off by shutdown after {took:.0f}s; outcome unknown, judged by the problem"
            try:
                if not self.journal.interrupt(f.action_id, detail, self.now()):
                    continue  # it ended just before
            except JournalError as exc:
                self.journal_failing(exc)  # left `running`: the next start's resume judges it the same way
            logger.warning("recovery {} on {} {}", f.action.kind, f.action.target, detail)

    async def _run(self, action: PlannedAction, action_id: int) -> None:
        started = self.clock.monotonic()
        if not await self._checkpoint():
            self._finish(action_id, Outcome(SKIPPED, "not run: this replica no longer leads"))
            logger.warning("{} on {} not run: this replica no longer leads", action.kind, action.target)
            return
        outcome = await self._attempt(action)
        self._finish(action_id, outcome)
        await self._checkpoint()
        self.report(action, outcome, self.clock.monotonic() - started)

    async def _checkpoint(self) -> bool:
        """The lease's fenced checkpoint; a journal it cannot read counts as not leading (do not act)."""
        try:
            return await self.checkpoint()
        except JournalError as exc:
            self.journal_failing(exc)
            return False

    async def _attempt(self, action: PlannedAction) -> Outcome:
        if action.dry_run:
            return Outcome(DRY_RUN, f"would {action.kind.replace('_', ' ')} {action.target}")
        limit = self.deadline(action)
        try:
            async with asyncio.timeout(limit):
                return await self.execute(action)
        except TimeoutError:
            return Outcome.failed(f"timed out after {limit:g}s (its deadline); abandoned, not verified")
        except Exception as exc:  # a bug: journaled as a failure, never a task dying with its row `running`
            logger.opt(exception=exc).error("recovery {} on {} raised", action.kind, action.target)
            return Outcome.failed(f"internal error: {type(exc).__name__} (traceback in the log)")

    def _finish(self, action_id: int, outcome: Outcome) -> None:
        try:
            self.flush()
            self.journal.finished(action_id, outcome.result, outcome.detail, self.now())
        except JournalError as exc:
            self._unwritten.append((action_id, outcome.result, outcome.detail, self.now()))
            self.journal_failing(exc)


def _slot(action: PlannedAction) -> str:
    """One action at a time per target; pages (all to `on-call`) one at a time per incident."""
    return f"page:{action.incident}" if action.kind == PAGE else action.target
