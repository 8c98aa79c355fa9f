"""Lines from follower threads reach the event loop in batches, in order, bounded; LogFeed turns them into
records, and a state change is never overtaken by lines read before it."""

from __future__ import annotations

import asyncio
import threading
import time

from prometheus_client import CollectorRegistry

from watchdog.clock import FakeClock
from watchdog.metrics import Metrics
from watchdog.signals.logfeed import FollowerState, Handoff, Item, LogFeed
from watchdog.signals.logstate import LogState
from watchdog.signals.logwatch import FOLLOWING, LogLine

EVO = "evolution_api"
HEAD = "[Evolution API] [loja] 1 - Tue Dec 01 2026 00:22:26   {level}  [{context}] [string] {text}"


async def until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_lines_from_threads_arrive_once_each_in_each_containers_order() -> None:
    loop = asyncio.get_running_loop()
    batches: list[list[Item]] = []
    handoff = Handoff(loop, batches.append, lambda: None, delay=0.005, max_lines=100)

    def write(name: str) -> None:
        for i in range(1000):
            handoff.put(LogLine(name, i, f"{name} {i}"))
            if i % 50 == 0:
                time.sleep(0.001)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    await until(lambda: sum(map(len, batches)) == 2000)
    for t in threads:
        t.join()
    got = [item for batch in batches for item in batch]
    for name in ("a", "b"):
        assert [i.at_ns for i in got if isinstance(i, LogLine) and i.container == name] == list(range(1000))


class RecordingLoop:
    """Stands in for the event loop: records the wake-ups instead of running them."""

    def __init__(self) -> None:
        self.wakes: list[tuple[object, ...]] = []

    def call_soon_threadsafe(self, *args: object) -> None:
        self.wakes.append(args)

    def call_later(self, *args: object) -> None:  # pragma: no cover - only passed along, never called
        raise AssertionError("not on the loop")


def test_the_loop_is_woken_once_per_batch_not_per_line() -> None:
    loop = RecordingLoop()
    batches: list[list[Item]] = []
    handoff = Handoff(loop, batches.append, lambda: None, delay=0.05, max_lines=100)  # type: ignore[arg-type]
    for i in range(250):
        handoff.put(LogLine(EVO, i, str(i)))
    # one timer for the batch, one immediate drain when it reached 100 lines; nothing per line
    assert loop.wakes == [(loop.call_later, 0.05, handoff.drain), (handoff.drain,)]
    handoff.drain()
    assert [len(b) for b in batches] == [250]
    handoff.put(LogLine(EVO, 250, "250"))
    assert len(loop.wakes) == 3  # the next line arms a new timer


async def test_a_state_change_goes_at_once_behind_the_lines_before_it() -> None:
    loop = asyncio.get_running_loop()
    batches: list[list[Item]] = []
    handoff = Handoff(loop, batches.append, lambda: None, delay=3600)
    handoff.put(LogLine(EVO, 1, "before"))
    handoff.put(FollowerState(EVO, FOLLOWING, "restarted"))
    await until(lambda: batches)
    assert batches == [[LogLine(EVO, 1, "before"), FollowerState(EVO, FOLLOWING, "restarted")]]


async def test_lines_past_the_limit_are_dropped_and_counted_while_the_loop_is_stuck() -> None:
    loop = asyncio.get_running_loop()
    batches: list[list[Item]] = []
    dropped: list[int] = []
    handoff = Handoff(loop, batches.append, lambda: dropped.append(1), delay=0.01, max_lines=10**6, limit=5)
    for i in range(8):  # the loop does not run in between: it is "stuck"
        handoff.put(LogLine(EVO, i, str(i)))
    await until(lambda: batches)
    assert [i.at_ns for i in batches[0] if isinstance(i, LogLine)] == [0, 1, 2, 3, 4]
    assert len(dropped) == 3


async def test_feed_classifies_records_and_flushes_the_last_one_when_lines_stop(clock: FakeClock) -> None:
    metrics = Metrics(CollectorRegistry())
    state = LogState(clock, evolution=EVO, dify=(), burst_count=3, burst_window=60, dify_silent_seconds=120)
    changes: list[int] = []
    feed = LogFeed(
        [EVO], state=state, metrics=metrics, docker_url="unix:///nowhere", on_change=lambda: changes.append(1)
    )
    lines = [
        HEAD.format(level="ERROR", context="DifyService", text="").replace("[string]", "[object]"),
        "{ code: 'not_found', message: 'Conversation Not Exists.', status: 404 }",
        HEAD.format(level="INFO", context="X", text="ok"),
        HEAD.format(level="WARN", context="WAMonitoringService", text='Instance "loja" - LOGOUT'),
    ]
    feed._deliver([LogLine(EVO, n, text) for n, text in enumerate(lines)])
    assert metrics.log_lines.labels(container=EVO)._value.get() == 4
    assert metrics.log_events.labels(container=EVO, rule="dify_error")._value.get() == 1
    # the logout is the last record: complete only once no line came for IDLE_FLUSH_SECONDS
    assert metrics.log_events.labels(container=EVO, rule="whatsapp_logged_out")._value.get() == 0
    await until(
        lambda: metrics.log_events.labels(container=EVO, rule="whatsapp_logged_out")._value.get() == 1
    )
    assert len(changes) == 2
