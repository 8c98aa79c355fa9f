"""The daemon: one asyncio loop running the probe scheduler and the HTTP server side by side."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable

import httpx
from loguru import logger
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.contactkey import resolve_contact_key
from watchdog.health import FINDING_KINDS, assess
from watchdog.metrics import Metrics
from watchdog.model import Finding, ProbeResult
from watchdog.probes.heartbeat import Heartbeat
from watchdog.probes.suite import ProbeSuite
from watchdog.recovery.engine import build_engine
from watchdog.recovery.planner import RESET_SESSION, RESTART_INSTANCE, Incident, PlannedAction
from watchdog.replicas.leadership import leadership_for
from watchdog.scheduling import IntervalScheduler
from watchdog.server import create_app
from watchdog.serving import bind, make_server
from watchdog.signals.collectors import TurnaroundCollector
from watchdog.signals.conversations import SIGNAL_FINDING_KINDS, ConversationMonitor
from watchdog.signals.diagnosis import StallDiagnosis
from watchdog.signals.heartbeat import E2E_NO_REPLY, HEARTBEAT_FINDING_KINDS
from watchdog.signals.logfeed import LogFeed
from watchdog.signals.logstate import LOG_FINDING_KINDS, log_state_for
from watchdog.signals.webhook import Envelope
from watchdog.status import StatusBoard, instances_view
from watchdog.statuspage import turnaround_view

# /healthz turns 503 when no probe cycle finished for this many intervals (plus the probe deadline).
STALE_AFTER_INTERVALS = 3
REFRESH_COALESCE_SECONDS = 0.2


class Watchdog:
    def __init__(
        self, settings: Settings, *, clock: Clock, registry: CollectorRegistry, http: httpx.AsyncClient
    ) -> None:
        self.settings = settings
        self.clock = clock
        contact_key = resolve_contact_key(settings)  # env, else the state directory's (made on first start)
        self.suite = ProbeSuite(settings, http, clock, contact_key=contact_key)
        self.metrics = Metrics(registry, turnaround_threshold=settings.turnaround_threshold_seconds)
        self.registry = registry
        self.board = StatusBoard(started_at=clock.time())
        self.conversations = ConversationMonitor(
            clock,
            self.metrics,
            contact_key=contact_key,
            threshold=settings.turnaround_threshold_seconds,
            stall_seconds=settings.stall_seconds,
            max_pending=settings.max_pending,
        )
        registry.register(TurnaroundCollector(self.conversations.tracker))
        self._started = clock.monotonic()
        self._canary: ProbeResult | None = None
        self.diagnosis = StallDiagnosis(
            self.suite.canary,
            clock,
            every=settings.stall_seconds,
            scheduled=settings.canary_interval_seconds > 0,
        )
        self._probe_findings: list[Finding] = []
        self._stall_timer: asyncio.TimerHandle | None = None
        self._refresh_soon: asyncio.TimerHandle | None = None
        self.logs = log_state_for(settings, clock)
        self._configured = frozenset(settings.evolution_instances)
        self._reported: frozenset[str] = frozenset()  # instances Evolution listed at the last probe
        self.recovery = build_engine(
            settings,
            clock=clock,
            http=http,
            metrics=self.metrics,
            on_repaired=self._repaired,
            watched=self.watched_instances,
        )
        self.leadership = leadership_for(settings, clock=clock, metrics=self.metrics, engine=self.recovery)
        self.heartbeat: Heartbeat | None = None  # opt-in: WATCHDOG_E2E_FROM_INSTANCE
        if settings.e2e_from_instance:
            self.heartbeat = Heartbeat(
                settings,
                http,
                clock,
                self.metrics,
                sessions=self.recovery.hands.evolution,
                state_of=lambda name: instances_view(self.board.results).get(name, {}).get("state"),
                watched=self.watched_instances,
                on_verdict=self.refresh_findings,
            )
            self.board.heartbeat = self.heartbeat.view

    def watched_instances(self) -> frozenset[str]:
        """EVOLUTION_INSTANCES, or when empty the instances Evolution itself reported last: the only
        names webhooks are tracked for and recovery may act on (never a name from a request alone). The
        heartbeat's prober is never one of them (config.py refuses it; the instances probe leaves it out)."""
        return self._configured or self._reported

    def _repaired(self, action: PlannedAction) -> None:
        """A verified repair closes the stalled waits it covered (a contact, an instance, everything)."""
        watched = self.watched_instances()
        self.suite.evolution.cadence.refresh([action.instance] if action.instance else watched)
        if action.kind == RESET_SESSION:
            self.conversations.repaired(instance=action.instance, remote_jid=action.subject)
        elif action.kind == RESTART_INSTANCE:
            self.conversations.repaired(instance=action.instance)
        else:
            self.conversations.repaired(instance=None)
        if self.heartbeat is not None and action.kind != RESET_SESSION:
            self.heartbeat.tracker.repaired(action.instance or None)  # the next heartbeat judges anew
        self.diagnosis.forget()
        self.refresh_findings()

    async def recovery_tick(self) -> None:
        """One turn of the ladder on the findings as they stand now; only the leading replica acts. It
        starts actions and returns: each runs in its own task with its own deadline, so a slow repair
        holds up neither the next turn, nor probing, nor another target's repair."""
        if not await self.leadership.may_act():
            self.recovery.standby()
            return
        await self.recovery.turn(self.board.findings)

    def log_feed(self) -> LogFeed | None:
        """Followers for the configured containers (None when there are none)."""
        if self.logs is None:
            return None
        url = self.settings.docker_url
        return LogFeed(
            self.settings.containers,
            state=self.logs,
            metrics=self.metrics,
            docker_url=url,
            on_change=self.request_refresh,
        )

    def request_refresh(self) -> None:
        """Coalesce bursts of log events into one findings refresh."""
        if self._refresh_soon is None:
            self._refresh_soon = asyncio.get_running_loop().call_later(
                REFRESH_COALESCE_SECONDS, self._refresh_now
            )

    def _refresh_now(self) -> None:
        self._refresh_soon = None
        self.refresh_findings()

    async def probe_cycle(self) -> list[Finding]:
        cadence = self.suite.evolution.cadence
        # an instance with a finding gets its sessions and webhook probed every cycle, not every Nth
        cadence.refresh(
            f.target.partition(":")[2] for f in self.board.findings if f.target.startswith("evolution:")
        )
        results = await self.suite.run_cycle()
        for result in results:
            if result.target == "evolution" and result.probe == "instances" and "watched" in result.data:
                self._reported = frozenset(result.data["watched"])
        fresh = [r for r in results if not cadence.carried(r)]
        if self._canary is not None:
            results.append(self._canary)  # the canary runs (and is observed) on its own, slower schedule
        self._probe_findings = assess(
            results, now=self.clock.time(), stall_seconds=self.settings.stall_seconds
        )
        if self.heartbeat is not None:  # the prober's session on a bot instance is no customer's
            self._probe_findings = self.heartbeat.tracker.customers_only(self._probe_findings)
        self.metrics.observe_probes(fresh)
        self.conversations.learn_sessions(fresh)
        self.board.record_cycle(results, mono=self.clock.monotonic(), wall=self.clock.time())
        self.metrics.last_cycle.set(self.clock.time())
        return self.refresh_findings()

    def refresh_findings(self) -> list[Finding]:
        """Probe findings from the last cycle plus what the webhooks and the logs say right now."""
        findings = self._probe_findings + self.conversations.findings()
        findings += self.diagnosis.findings(
            findings, start=self.refresh_findings, stall_seconds=self.settings.stall_seconds
        )
        if self.logs is not None:
            findings += self.logs.findings(self.conversations.inbound_within)
        if self.heartbeat is not None:
            findings += [self._answered_by(f) for f in self.heartbeat.tracker.findings()]
        self.metrics.observe_findings(
            findings,
            known_kinds=FINDING_KINDS + SIGNAL_FINDING_KINDS + LOG_FINDING_KINDS + HEARTBEAT_FINDING_KINDS,
        )
        _log_changes(self.board.findings, findings)
        self.board.findings = findings
        return findings

    def _answered_by(self, finding: Finding) -> Finding:
        """An unanswered heartbeat names the bot integration it went to: only Dify's is restarted
        (recovery/problems.py)."""
        if self.heartbeat is None or finding.kind != E2E_NO_REPLY:
            return finding
        instance = finding.target.partition(":")[2]
        integration = self.conversations.answering_for(instance, self.heartbeat.tracker.prober_jid(instance))
        return dataclasses.replace(finding, evidence={**finding.evidence, "integration": integration})

    def ingest(self, envelope: Envelope) -> str:
        """One webhook: fold it in, refresh findings when a stalled wait ended, keep the stall timer armed."""
        if self.heartbeat is not None and self.heartbeat.observe(envelope):
            return "heartbeat"  # the prober's traffic: kept out of every customer figure
        watched = self.watched_instances()
        if watched and envelope.instance not in watched:
            return "ignored_unwatched"  # kept out of every table and label: a forged name costs nothing
        stalled_before = self.conversations.tracker.stalled_count
        outcome = self.conversations.ingest(envelope, include_groups=self.settings.track_groups)
        if self.conversations.tracker.stalled_count != stalled_before:
            self.refresh_findings()
        self._arm_stall_timer()
        return outcome

    def _arm_stall_timer(self) -> None:
        """One timer, set for the next stall, so a stall is reported when it happens."""
        deadline = self.conversations.next_deadline()
        if deadline is None or self._stall_timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self.clock.monotonic())
        self._stall_timer = loop.call_later(delay, self._on_stall_timer)

    def _on_stall_timer(self) -> None:
        self._stall_timer = None
        stalls = self.conversations.collect_stalls()
        for stall in stalls:
            logger.warning(
                "stalled: {} on {} waited {:.1f}s for a reply",
                stall.contact,
                stall.instance,
                stall.waiting_seconds,
            )
        if stalls:
            self.refresh_findings()
        self._arm_stall_timer()

    async def canary_run(self) -> None:
        if self.suite.canary is None:
            return
        self._canary = await self.suite.canary.run()
        self.metrics.observe_probes([self._canary])

    async def heartbeat_run(self) -> None:
        """Only the leading replica writes to WhatsApp; both observe the heartbeat's webhooks."""
        if self.heartbeat is not None and self.leadership.leading():
            await self.heartbeat.beat()

    async def guarded(self, job: str, step: Callable[[], Awaitable[object]]) -> None:
        """A failing job is logged and counted; it never stops the daemon. A job cut off by shutdown
        (the scheduler cancels what is running) ends quietly: that is not a failure."""
        try:
            await step()
        except asyncio.CancelledError:
            logger.debug("job {} cancelled by shutdown", job)
        except Exception as exc:
            self.metrics.job_failures.labels(job=job).inc()
            logger.opt(exception=exc).error("job {} failed: {}", job, exc)

    def liveness(self) -> tuple[bool, str]:
        limit = (
            self.settings.probe_interval_seconds * STALE_AFTER_INTERVALS + self.settings.probe_timeout_seconds
        )
        since = self.board.last_cycle_at if self.board.last_cycle_at is not None else self._started
        age = self.clock.monotonic() - since
        what = "last probe cycle" if self.board.last_cycle_at is not None else "started"
        degraded = f"; degraded: journal {self.recovery.journal_error}" if self.recovery.journal_error else ""
        return age <= limit, f"{what} {age:.1f}s ago (limit {limit:g}s){degraded}"

    def _silence_until(self, until: float) -> None:
        self.leadership.require("maintenance")
        self.recovery.silence_until(until)

    async def _acknowledge(self, key: str) -> Incident:
        self.leadership.require("the ack")
        return await self.recovery.acknowledge(key)

    def http_app(self) -> Starlette:
        return create_app(
            self.board,
            self.registry,
            settings_view=self.settings.public(),
            liveness=self.liveness,
            incidents=self.recovery.history,
            maintenance=self._silence_until,
            acknowledge=self._acknowledge,
            admin_token=self.settings.admin_token,
            now=self.recovery.now,
            recovery=lambda: {**self.recovery.view(), "leadership": self.leadership.view()},
            ingest=self.ingest,
            metrics=self.metrics,
            webhook_token=self.settings.webhook_token,
            conversations=self.conversations.status,
            turnaround=lambda: turnaround_view(
                self.conversations.recent, self.settings.turnaround_threshold_seconds
            ),
        )


class Daemon:
    """Owns the scheduler and the server; `stop()` (or SIGTERM/SIGINT) shuts both down cleanly."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        host, port = watchdog.settings.listen
        self.socket = bind(host, port)
        self.server = make_server(watchdog.http_app(), handle_signals=False)
        self.scheduler = IntervalScheduler(guard=watchdog.guarded)  # monotonic: see watchdog/scheduling.py

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.watchdog.settings
        interval = settings.probe_interval_seconds
        self.scheduler.add("probes", self.watchdog.probe_cycle, every=interval, first_in=0)
        if settings.canary_interval_seconds > 0 and self.watchdog.suite.canary is not None:
            canary_every = settings.canary_interval_seconds
            self.scheduler.add("canary", self.watchdog.canary_run, every=canary_every, first_in=0)
        self.scheduler.add("recovery", self.watchdog.recovery_tick, every=interval)
        if self.watchdog.heartbeat is not None:  # first after one probe cycle: states and instances known
            beat_every = settings.e2e_interval_seconds
            self.scheduler.add("heartbeat", self.watchdog.heartbeat_run, every=beat_every, first_in=interval)
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
        self.watchdog.recovery.resume()
        self.watchdog.leadership.start()
        self.scheduler.start()  # probes and canary at once, the first recovery turn after one interval
        feed = self.watchdog.log_feed()
        if feed is not None:
            feed.start()
        logger.info(
            "watchdog listening on {} probing every {:g}s (recovery mode {})",
            self.url,
            settings.probe_interval_seconds,
            settings.recovery_mode,
        )
        try:
            await self.server.serve(sockets=[self.socket])
        finally:
            await self.scheduler.shutdown()  # runs under way are cancelled (`guarded` ends them quietly)
            await self.watchdog.diagnosis.stop()
            await self.watchdog.recovery.stop()  # actions in flight: cancelled, journaled `interrupted`
            await self.watchdog.recovery.notifier.drain(timeout=5.0)  # news already on its way
            await self.watchdog.leadership.stop()
            if feed is not None:
                await feed.stop()
            self.watchdog.recovery.journal.close()
            for sig in signals:
                loop.remove_signal_handler(sig)
            self.socket.close()
            logger.info("watchdog stopped")

    def _on_signal(self, sig: signal.Signals) -> None:
        logger.info("received {}, shutting down", sig.name)
        self.stop()


def _log_changes(before: list[Finding], after: list[Finding]) -> None:
    def key(f: Finding) -> tuple[str, str, str]:
        return (f.kind, f.target, str(f.evidence.get("contact", "")))

    old = {key(f) for f in before}
    new = {key(f) for f in after}
    for finding in after:
        if key(finding) not in old:
            logger.warning("finding {} on {}: {}", finding.kind, finding.target, finding.summary)
    for finding in before:
        if key(finding) not in new:
            logger.info("cleared {} on {}", finding.kind, finding.target)
