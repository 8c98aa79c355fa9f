"""Metrics read from the turnaround tracker at scrape time, so the hot path updates nothing extra."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watchdog.signals.turnaround import TurnaroundTracker


class TurnaroundCollector(Collector):
    def __init__(self, tracker: TurnaroundTracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "watchdog_pending_messages",
            "Conversations whose last customer message has no reply yet.",
            labels=["instance"],
        )
        stalled = GaugeMetricFamily(
            "watchdog_stalled_conversations",
            "Conversations waiting longer than WATCHDOG_STALL_SECONDS right now.",
            labels=["instance"],
        )
        waiting, stuck = self.tracker.counts()  # no per-turn objects: the table may hold 100,000
        for instance in sorted(waiting):
            pending.add_metric([instance], waiting[instance])
            stalled.add_metric([instance], stuck.get(instance, 0))
        yield pending
        yield stalled
        evicted = CounterMetricFamily(
            "watchdog_pending_evictions",
            "Pending turns dropped because the table was full (WATCHDOG_MAX_PENDING).",
        )
        evicted.add_metric([], self.tracker.evicted)
        yield evicted
        duplicates = CounterMetricFamily(
            "watchdog_webhook_duplicates", "Messages delivered more than once by Evolution's retries."
        )
        duplicates.add_metric([], self.tracker.duplicates)
        yield duplicates
