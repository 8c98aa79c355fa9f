"""Glue between the follower threads and the event loop: lines -> records -> rules -> LogState + metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from watchdog.metrics import Metrics
from watchdog.signals.logrules import RecordAssembler, classify
from watchdog.signals.logstate import LogState
from watchdog.signals.logwatch import ContainerFollower, LogLine

QUEUE_LIMIT = 20_000
IDLE_FLUSH_SECONDS = 0.3  # a record whose continuation lines stopped coming is complete


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
        self._queue: asyncio.Queue[LogLine] = asyncio.Queue(QUEUE_LIMIT)
        self._assemblers = {name: RecordAssembler() for name in self.containers}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        start_ns = time.time_ns()  # follow from now: what happened before start is not news

        def on_line(line: LogLine) -> None:
            loop.call_soon_threadsafe(self._put, line)

        def on_state(name: str, state: str, detail: str) -> None:
            loop.call_soon_threadsafe(self._follower_state, name, state, detail)

        for name in self.containers:
            follower = ContainerFollower(
                self.docker_url, name, on_line=on_line, on_state=on_state, start_ns=start_ns
            )
            self.followers.append(follower)
            follower.start()
        self._task = loop.create_task(self._consume())

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(f.stop) for f in self.followers))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _put(self, line: LogLine) -> None:
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            self.metrics.log_lines_dropped.inc()

    def _follower_state(self, name: str, state: str, detail: str) -> None:
        self.state.follower(name, state, detail)
        self.on_change()

    async def _consume(self) -> None:
        while True:
            try:
                line = await asyncio.wait_for(self._queue.get(), IDLE_FLUSH_SECONDS)
            except TimeoutError:
                self._flush()
                continue
            self.metrics.log_lines.labels(container=line.container).inc()
            self.state.line(line.container)
            record = self._assemblers[line.container].feed(line.text)
            if record is not None:
                self._classify(line.container, record)

    def _flush(self) -> None:
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
