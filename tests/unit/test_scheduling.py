"""The monotonic interval scheduler: grid, skip-while-running, coalescing, failures, pause and shutdown.

Runs on a real event loop with short intervals; counts are checked, not timings. The wall-clock step
itself is proven in tests/reliability/test_chaos_wallclock.py, under libfaketime.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from loguru import logger

from watchdog.scheduling import IntervalScheduler, next_due

EVERY = 0.05


@pytest.fixture
def messages() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="DEBUG")
    yield seen
    logger.remove(sink)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def test_next_due_is_the_first_grid_point_after_now() -> None:
    assert next_due(10.0, 1.0, 10.0) == 11.0  # on time
    assert next_due(10.0, 1.0, 9.9) == 11.0  # a timer a hair early still moves one step
    assert next_due(10.0, 1.0, 12.5) == 13.0  # 2.5 intervals late: one run, then back on the grid
    assert next_due(10.0, 1.0, 12.0) == 13.0  # strictly after now


async def test_jobs_run_at_once_or_after_one_interval_and_keep_coming() -> None:
    scheduler = IntervalScheduler()
    ran: list[str] = []

    async def step(name: str) -> None:
        ran.append(name)

    scheduler.add("now", lambda: step("now"), every=EVERY, first_in=0)
    scheduler.add("later", lambda: step("later"), every=60)
    scheduler.start()
    await until(lambda: ran.count("now") >= 4)
    await scheduler.shutdown()
    assert "later" not in ran
    assert scheduler.jobs["now"].runs == ran.count("now") and scheduler.jobs["now"].skips == 0


async def test_a_job_still_running_is_skipped_by_name_never_stacked(messages: list[str]) -> None:
    scheduler = IntervalScheduler()
    release = asyncio.Event()
    running = 0
    most = 0

    async def slow() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    scheduler.add("probes", slow, every=EVERY, first_in=0)
    scheduler.start()
    job = scheduler.jobs["probes"]
    await until(lambda: job.skips >= 3)
    assert job.runs == 1
    release.set()
    await until(lambda: job.runs >= 2)
    await scheduler.shutdown()
    assert most == 1
    skipped = [m for m in messages if m.startswith("job probes skipped: its previous run is still going")]
    assert len(skipped) == job.skips


async def test_runs_missed_while_the_loop_was_blocked_are_one_run_not_a_burst() -> None:
    scheduler = IntervalScheduler()
    stamps: list[float] = []

    async def step() -> None:
        stamps.append(time.monotonic())

    every = 0.2
    scheduler.add("probes", step, every=every)
    scheduler.start()
    time.sleep(every * 6)  # noqa: ASYNC251 -- on purpose: the loop is stuck for six intervals
    await until(lambda: len(stamps) >= 1)
    await asyncio.sleep(every / 4)
    job = scheduler.jobs["probes"]
    assert len(stamps) == 1 and job.runs == 1
    assert job.due > asyncio.get_running_loop().time()  # back on its grid, in the future
    await scheduler.shutdown()


async def test_a_failing_job_is_logged_by_name_and_keeps_its_schedule(messages: list[str]) -> None:
    scheduler = IntervalScheduler()
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    scheduler.add("canary", flaky, every=EVERY, first_in=0)
    scheduler.start()
    await until(lambda: calls >= 3)
    await scheduler.shutdown()
    assert "job canary failed: boom" in messages


async def test_the_guard_gets_each_run_by_the_job_name() -> None:
    seen: list[str] = []

    async def guard(name: str, step: Callable[[], object]) -> None:
        seen.append(name)

    scheduler = IntervalScheduler(guard=guard)  # type: ignore[arg-type]
    scheduler.add("recovery", lambda: asyncio.sleep(0), every=EVERY, first_in=0)
    scheduler.start()
    await until(lambda: len(seen) >= 2)
    await scheduler.shutdown()
    assert set(seen) == {"recovery"}


async def test_pause_stops_new_runs_and_resume_starts_them_again() -> None:
    scheduler = IntervalScheduler()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    scheduler.add("probes", step, every=EVERY, first_in=0)
    scheduler.start()
    await until(lambda: calls >= 1)
    scheduler.pause()
    paused_at = calls
    await asyncio.sleep(EVERY * 4)
    assert calls == paused_at
    scheduler.resume()
    await until(lambda: calls >= paused_at + 2)
    await scheduler.shutdown()


async def test_shutdown_cancels_a_run_under_way_and_nothing_runs_after() -> None:
    scheduler = IntervalScheduler()
    started = asyncio.Event()
    cancelled = False
    calls = 0

    async def endless() -> None:
        nonlocal cancelled, calls
        calls += 1
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled = True
            raise

    scheduler.add("probes", endless, every=EVERY, first_in=0)
    scheduler.start()
    await asyncio.wait_for(started.wait(), 10)
    await scheduler.shutdown()
    assert cancelled
    await asyncio.sleep(EVERY * 3)
    assert calls == 1


async def test_a_job_added_after_start_is_armed_and_names_are_unique() -> None:
    scheduler = IntervalScheduler()
    scheduler.start()
    done = asyncio.Event()

    async def step() -> None:
        done.set()

    scheduler.add("recovery", step, every=EVERY)
    await asyncio.wait_for(done.wait(), 10)
    with pytest.raises(ValueError, match="job recovery already scheduled"):
        scheduler.add("recovery", step, every=EVERY)
    with pytest.raises(ValueError, match="interval must be positive"):
        scheduler.add("other", step, every=0)
    await scheduler.shutdown()
