"""Interval jobs on the monotonic clock: a wall-clock step (NTP, `date -s`) never pauses or bunches them.

Why not APScheduler 3.x (tried first): a job's next run is stored as a wall-clock datetime;
`BaseScheduler._process_jobs` picks due jobs by comparing it with `datetime.now()` and sets the next
wakeup from a wall-clock difference. A trigger deriving its times from the monotonic clock does not help:
after a step back of an hour the stored next run lies an hour ahead, the trigger is not asked again
until then, and every job stalls for the hour (seen under libfaketime with an interval trigger and with
such a trigger alike). Making it work would mean replacing its job store, its trigger and its timer.

So each job here keeps its next due time on the event loop's clock (`loop.time()`, monotonic) and arms
one `call_at`. Semantics kept from the APScheduler setup it replaces: a job still running when it is due
is skipped and logged by name, never stacked (max_instances=1); runs missed while the loop was blocked
are one run, not a burst (coalesce); a job's failure goes to `guard`, which logs and counts it.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

Step = Callable[[], Awaitable[object]]
Guard = Callable[[str, Step], Awaitable[None]]


def next_due(due: float, every: float, now: float) -> float:
    """The first point of the job's grid (due + k * every, k >= 1) after `now`: late runs coalesce."""
    behind = max(0, math.floor((now - due) / every) + 1)
    return due + every * max(1, behind)


async def _logged(name: str, step: Step) -> None:
    """The guard when none is given: a failure is logged, never left to the loop."""
    try:
        await step()
    except Exception as exc:
        logger.opt(exception=exc).error("job {} failed: {}", name, exc)


@dataclass
class Job:
    name: str
    step: Step
    every: float
    due: float  # loop time (monotonic) of the next run
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    started: float = 0.0
    runs: int = 0
    skips: int = 0


class IntervalScheduler:
    """Runs named jobs every so many seconds of monotonic time in the running event loop."""

    def __init__(self, guard: Guard = _logged) -> None:
        self._guard = guard
        self._pending: list[tuple[str, Step, float, float]] = []
        self.jobs: dict[str, Job] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.paused = False

    def add(self, name: str, step: Step, *, every: float, first_in: float | None = None) -> None:
        """Run `step` every `every` seconds, first after `first_in` (default: one interval; 0: at once)."""
        if every <= 0:
            raise ValueError(f"job {name}: interval must be positive, not {every}")
        if name in self.jobs or any(p[0] == name for p in self._pending):
            raise ValueError(f"job {name} already scheduled")
        self._pending.append((name, step, every, every if first_in is None else first_in))
        if self._loop is not None:
            self._start_pending()

    def start(self) -> None:
        """Arm every job; must be called from the loop the jobs run in."""
        self._loop = asyncio.get_running_loop()
        self._start_pending()

    def _start_pending(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for name, step, every, first_in in self._pending:
            job = self.jobs[name] = Job(name, step, every, now + max(0.0, first_in))
            self._arm(job)
        self._pending.clear()

    def _arm(self, job: Job) -> None:
        if self._loop is not None and not self.paused:
            job.timer = self._loop.call_at(job.due, self._fire, job)

    def _fire(self, job: Job) -> None:
        assert self._loop is not None
        job.timer = None
        now = self._loop.time()
        if job.task is not None and not job.task.done():
            job.skips += 1
            logger.warning(
                "job {} skipped: its previous run is still going ({:.1f}s)", job.name, now - job.started
            )
        else:
            job.runs += 1
            job.started = now
            job.task = self._loop.create_task(self._run(job), name=f"job:{job.name}")
        job.due = next_due(job.due, job.every, now)
        self._arm(job)

    async def _run(self, job: Job) -> None:
        await _logged(job.name, functools.partial(self._guard, job.name, job.step))  # guards never raise
        assert self._loop is not None
        logger.debug("job {} ran in {:.3f}s", job.name, self._loop.time() - job.started)

    def pause(self) -> None:
        """No job starts until `resume()`; runs under way go on."""
        self.paused = True
        for job in self.jobs.values():
            if job.timer is not None:
                job.timer.cancel()
                job.timer = None

    def resume(self) -> None:
        """Jobs start again on their grid; the runs missed while paused are not made up."""
        self.paused = False
        if self._loop is None:
            return
        now = self._loop.time()
        for job in self.jobs.values():
            if job.timer is None:
                job.due = job.due if job.due > now else next_due(job.due, job.every, now)
                self._arm(job)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop arming jobs and cancel the runs under way (waiting up to `timeout` for them to end)."""
        self.pause()
        running = [job.task for job in self.jobs.values() if job.task is not None and not job.task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=timeout)
        self._loop = None
