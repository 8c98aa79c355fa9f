"""Glue between the follower threads and the event loop: lines -> records -> rules -> LogState + metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from watchdog.metrics import Metrics
from watchdog.signals.logrules import RecordAssembler, classify
from watchdog.signals.logstate import LogState
from watchdog.signals.logwatch import ContainerFollower, LogLine

QUEUE_LIMIT = 20_000  # lines waiting for the event loop; past it new lines are dropped and counted
IDLE_FLUSH_SECONDS = 0.3  # a record whose continuation lines stopped coming is complete
BATCH_SECONDS = 0.05  # the followers wake the event loop at most this often...
BATCH_LINES = 500  # ...unless this many lines wait (one batch is classified in one loop callback)


class FollowerState(NamedTuple):
    container: str
    state: str
    detail: str


Item = LogLine | FollowerState


class Handoff:
    """Follower threads -> event loop, in batches. Waking the loop per line (`call_soon_threadsafe`)
    was a tenth of the daemon's CPU at 2,000 lines/s; here the first item of a batch arms a timer and
    the loop takes everything waiting at once. Items keep their arrival order; a state change goes at
    once, behind the lines that came before it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[Item]], None],
        on_drop: Callable[[], None],
        *,
        delay: float = BATCH_SECONDS,
        max_lines: int = BATCH_LINES,
        limit: int = QUEUE_LIMIT,
    ) -> None:
        self.loop, self.deliver, self.on_drop = loop, deliver, on_drop
        self.delay, self.max_lines, self.limit = delay, max_lines, limit
        self._lock = threading.Lock()
        self._items: list[Item] = []
        self._armed = False  # a drain is scheduled
        self._urgent = False  # ...to run right away

    def put(self, item: Item) -> None:
        """From a follower thread."""
        urgent = isinstance(item, FollowerState)
        with self._lock:
            dropped = not urgent and len(self._items) >= self.limit
            wake = False
            if not dropped:
                self._items.append(item)
                urgent = urgent or len(self._items) >= self.max_lines
                wake = not self._urgent if urgent else not self._armed
                self._armed = True
                self._urgent = self._urgent or urgent
        if dropped:
            self.on_drop()
        elif wake:
            if urgent:
                self.loop.call_soon_threadsafe(self.drain)
            else:
                self.loop.call_soon_threadsafe(self.loop.call_later, self.delay, self.drain)

    def drain(self) -> None:
        """On the loop: deliver everything waiting (a later timer finding nothing is harmless)."""
        with self._lock:
            items, self._items = self._items, []
            self._armed = self._urgent = False
        if items:
            self.deliver(items)


class LogFeed:
    def __init__(
        self,
        containers: Sequence[str],
        *,
        state: LogState,
        metrics: Metrics,
        docker_url: str,
        on_change: Callable[[], None],
    ) -> None:
        self.containers = tuple(containers)
        self.state = state
        self.metrics = metrics
        self.docker_url = docker_url
        self.on_change = on_change
        self.followers: list[ContainerFollower] = []
        self._assemblers = {name: RecordAssembler() for name in self.containers}
        self._idle: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        start_ns = time.time_ns()  # follow from now: what happened before start is not news
        handoff = Handoff(loop, self._deliver, self.metrics.log_lines_dropped.inc)

        def on_state(name: str, state: str, detail: str) -> None:
            handoff.put(FollowerState(name, state, detail))

        for name in self.containers:
            follower = ContainerFollower(
                self.docker_url, name, on_line=handoff.put, on_state=on_state, start_ns=start_ns
            )
            self.followers.append(follower)
            follower.start()

    async def stop(self) -> None:
        self._stopped = True
        await asyncio.gather(*(asyncio.to_thread(f.stop) for f in self.followers))
        if self._idle is not None:
            self._idle.cancel()

    def _deliver(self, items: list[Item]) -> None:
        if self._stopped:
            return
        counts: dict[str, int] = {}
        for item in items:
            if isinstance(item, FollowerState):
                self.state.follower(*item)
                self.on_change()
                continue
            counts[item.container] = counts.get(item.container, 0) + 1
            self.state.line(item.container)
            record = self._assemblers[item.container].feed(item.text)
            if record is not None:
                self._classify(item.container, record)
        for name, count in counts.items():
            self.metrics.log_lines.labels(container=name).inc(count)
        if counts:  # flush when no line came for a while, as before batching
            if self._idle is not None:
                self._idle.cancel()
            self._idle = asyncio.get_running_loop().call_later(IDLE_FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._idle = None
        for name, assembler in self._assemblers.items():
            record = assembler.flush()
            if record is not None:
                self._classify(name, record)

    def _classify(self, container: str, record: str) -> None:
        result = classify(record)
        self.state.record(container, result)
        if result.rule is not None:
            self.metrics.log_events.labels(container=container, rule=result.rule).inc()
            self.on_change()
