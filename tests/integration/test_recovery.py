"""The ladder against the emulators over real HTTP (and a real Docker engine for L3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from tests.integration import dockerkit
from tests.integration.stack import Stack, running_stack
from watchdog.app import Daemon, Watchdog
from watchdog.clock import FakeClock, SystemClock
from watchdog.config import Settings
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity
from watchdog.probes.suite import http_client
from watchdog.recovery.engine import build_engine
from watchdog.serving import free_port
from watchdog.signals.conversations import MIN_INBOUND_TO_JUDGE_ALONE
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
ANA = "5511987600001@s.whatsapp.net"
AUTO = {"WATCHDOG_RECOVERY_MODE": "auto", "WATCHDOG_RECOVERY_HOLD_SECONDS": "1"}


@asynccontextmanager
async def daemon_for(settings: Settings) -> AsyncIterator[Watchdog]:
    """The daemon in this loop; its HTTP address is `watchdog.url` (set here for the tests)."""
    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        daemon = Daemon(watchdog)
        task = asyncio.create_task(daemon.run())
        watchdog.url = daemon.url  # type: ignore[attr-defined]
        try:
            yield watchdog
        finally:
            daemon.stop()
            await task


def actions(watchdog: Watchdog) -> list[tuple[str, str]]:
    return [(a.kind, a.result) for a in watchdog.recovery.journal.recent_actions(0)]


async def until(condition: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def point_webhooks(stack: Stack, url: str) -> None:
    for instance in stack.evolution.instances:
        hook = {
            "enabled": True,
            "url": url,
            "events": ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"],
        }
        stack.http.post(
            f"{stack.evolution_url}/webhook/set/{instance}",
            json={"webhook": hook},
            headers={"apikey": "stack-evolution-key"},
        ).raise_for_status()


async def test_stale_conversation_is_repaired_at_l1_without_touching_the_instance() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        settings = stack.settings(**AUTO, WATCHDOG_FALLBACK_MESSAGE="Desculpe a demora!")
        async with daemon_for(settings) as watchdog:
            stack.fault("dify", "forget_after", messages=1)
            stack.inbound(ANA, "Oi")
            stack.inbound(ANA, "Alô?")  # 404 Conversation Not Exists.: every later message fails
            await until(lambda: ("reset_session", "ok") in actions(watchdog))
            stack.http.delete(f"{stack.dify_root}/_sim/faults/forget_after")
            await until(lambda: not watchdog.recovery.journal.open_incidents())
            history = watchdog.recovery.journal.history()
            done = actions(watchdog)
    assert {kind for kind, _ in done} == {"reset_session"}  # never a restart
    assert stack.session(ANA) is None or stack.session(ANA).session_id == ANA
    assert history[0]["closed_at"] is not None and "5511" not in str(history)
    detail = history[0]["actions"][0]["detail"]  # what changeStatus delete removed, read before it ran
    assert detail.startswith("removed 1 session of this contact: loja/dify ")
    assert detail.endswith("; fallback reply sent")


async def test_closed_socket_is_repaired_at_l2_and_verified_open() -> None:
    with running_stack(EvolutionOptions(instances=("loja", "suporte"), debounce_seconds=0)) as stack:
        async with daemon_for(stack.settings(**AUTO)) as watchdog:
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(lambda: ("restart_instance", "ok") in actions(watchdog))
            await until(lambda: not watchdog.recovery.journal.open_incidents())
            done = actions(watchdog)
    assert stack.evolution.instances["loja"].state == "open"
    assert [kind for kind, _ in done] == ["restart_instance"]


async def test_unloaded_instance_fails_l2_on_the_error_body_and_pages_without_containers() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        async with daemon_for(stack.settings(**AUTO)) as watchdog:
            stack.fault("evolution", "instance_unloaded", instance="loja")
            await until(lambda: ("page", "undelivered") in actions(watchdog))  # no WATCHDOG_NOTIFY_URLS
            detail = watchdog.recovery.journal.history()[0]["actions"][0]["detail"]
            done = actions(watchdog)
    assert done == [("restart_instance", "failed"), ("page", "undelivered")]
    assert "restart refused" in detail


async def test_a_restart_that_never_verifies_holds_up_no_probe_cycle_and_no_other_repair() -> None:
    """The forced long action: loja's restart never comes back `open` (its verify may wait 10 minutes).
    While it runs, probe cycles and recovery turns go on (counted, not timed), suporte's contact is
    repaired at L1, loja gets no second action and the scheduler skips no run. At shutdown the restart is
    journaled `interrupted` and its incident is back on its rung, as a restarted watchdog expects."""
    skipped: list[str] = []  # the scheduler names each skipped run: "job <name> skipped: ..."
    sink = logger.add(
        lambda m: skipped.append(m.record["message"]), filter=lambda r: " skipped: " in r["message"]
    )
    with running_stack(EvolutionOptions(instances=("loja", "suporte"), debounce_seconds=0)) as stack:
        stack.evolution.reconnect_seconds = 3600.0  # restarted, loja stays `connecting`
        restarts = 0
        real_restart = stack.evolution.restart

        def counted_restart(name: str) -> bool:
            nonlocal restarts
            restarts += 1
            return real_restart(name)

        stack.evolution.restart = counted_restart  # type: ignore[method-assign]
        settings = stack.settings(**AUTO, WATCHDOG_RESTART_TIMEOUT_SECONDS="600")
        async with daemon_for(settings) as watchdog:
            turns = 0
            real_turn = watchdog.recovery.turn

            async def counted_turn(findings: Any) -> Any:
                nonlocal turns
                turns += 1
                return await real_turn(findings)

            watchdog.recovery.turn = counted_turn  # type: ignore[method-assign]
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(lambda: ("restart_instance", "running") in actions(watchdog))
            cycles, turned = watchdog.board.cycles, turns
            stack.fault("dify", "forget_after", messages=1)
            stack.inbound(ANA, "Oi", instance="suporte")
            stack.inbound(ANA, "Alô?", instance="suporte")  # 404 Conversation Not Exists.
            await until(lambda: ("reset_session", "ok") in actions(watchdog), timeout=60)
            await until(lambda: watchdog.board.cycles >= cycles + 5 and turns >= turned + 5, timeout=60)
            during = actions(watchdog)
            in_flight = watchdog.recovery.view()["in_flight"]
        rows = _journal_rows(settings.state_path, "SELECT kind, result, detail FROM actions ORDER BY id")
        [(level,)] = _journal_rows(
            settings.state_path,
            "SELECT level FROM incidents WHERE key = 'instance:loja' AND closed_at IS NULL",
        )
    assert [a for a in during if a[0] == "restart_instance"] == [("restart_instance", "running")]
    assert ("reset_session", "ok") in during and restarts == 1
    assert [f["target"] for f in in_flight] == ["instance:loja"]  # type: ignore[attr-defined]
    logger.remove(sink)
    assert skipped == []
    [restart] = [r for r in rows if r[0] == "restart_instance"]
    assert restart[1] == "interrupted" and restart[2].startswith("cut off by shutdown")
    assert level == 2  # L2 again: the interrupted restart is judged by the problem after its cooldown


async def test_dry_run_only_reports() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        async with daemon_for(stack.settings(WATCHDOG_RECOVERY_MODE="dry-run")) as watchdog:
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(lambda: ("restart_instance", "dry_run") in actions(watchdog))
            async with httpx.AsyncClient() as client:
                status = (await client.get(f"{watchdog.url}/api/status")).json()  # type: ignore[attr-defined]
    assert stack.evolution.instances["loja"].state == "connecting"  # nothing was touched
    assert status["incidents"][0]["actions"][0]["result"] == "dry_run"


async def _customers(sim: httpx.AsyncClient, outcomes: list[str], every: float = 0.3) -> None:
    """Customers write to loja and the owner answers each from the phone (no bot here: only inbound is at
    stake). While the emulator's container restarts a message cannot be sent; the customers go on."""
    n = 0
    while True:
        jid = f"55119876{n % 3:05d}@s.whatsapp.net"
        try:
            said = await sim.post("/_sim/inbound", json={"instance": "loja", "remoteJid": jid, "text": "Oi"})
            outcomes.append(said.json()["outcome"])
            await sim.post("/_sim/phone-reply", json={"instance": "loja", "remoteJid": jid, "text": "Olá!"})
        except httpx.HTTPError:
            outcomes.append("unreachable")
        n += 1
        await asyncio.sleep(every)


async def test_dead_processor_needs_l3_and_the_container_is_restarted(
    docker_engine: Any, tmp_path: Path
) -> None:
    """The processor dies silently (upstream 2.3.x logs nothing, the instance stays `open`): the one watched
    instance's inbound stops while its customers keep writing, its silence against its own traffic is
    `inbound_stopped`, L3 restarts the Evolution container, and inbound flows again."""
    name = "evo-watchdog-test-evolution-l3"
    port, listen = free_port(), free_port()
    key = "l3-evolution-key"
    hook = f"http://127.0.0.1:{listen}/webhook/evolution"
    command = [
        "-m",
        "watchdog",
        "sim",
        "evolution",
        "--port",
        str(port),
        "--api-key",
        key,
        "--webhook-url",
        hook,
    ]
    dockerkit.run_python(docker_engine, name, command, tmp_path)
    url = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        {
            "EVOLUTION_URL": url,
            "EVOLUTION_API_KEY": key,
            "EVOLUTION_INSTANCES": "loja",
            "EVOLUTION_CONTAINER": name,
            "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
            "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "1",
            "WATCHDOG_STALL_SECONDS": "5",  # quiet after max(5 s, 10 usual gaps of about 0.3 s)
            "WATCHDOG_LISTEN": f"127.0.0.1:{listen}",
            "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
            "WATCHDOG_RESTART_TIMEOUT_SECONDS": "30",
            **AUTO,
        }
    )
    outcomes: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as sim:
            deadline = time.monotonic() + 30
            while True:
                try:
                    (await sim.get("/")).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "the emulator container never answered"
                    await asyncio.sleep(0.2)
            async with daemon_for(settings) as watchdog:
                activity = watchdog.conversations.activity
                customers = asyncio.create_task(_customers(sim, outcomes))
                try:
                    learned = MIN_INBOUND_TO_JUDGE_ALONE  # its usual pace, judged with no other instance
                    await until(lambda: "loja" in activity and activity["loja"].count >= learned, timeout=30)
                    started_before = docker_engine.containers.get(name).attrs["State"]["StartedAt"]
                    (await sim.post("/_sim/faults", json={"name": "processor_dead"})).raise_for_status()
                    lost_from = len(outcomes)
                    await until(
                        lambda: any(f.kind == "inbound_stopped" for f in watchdog.board.findings), timeout=30
                    )
                    await until(lambda: ("restart_container", "ok") in actions(watchdog), timeout=60)
                    restarted_at = len(outcomes)
                    await until(lambda: "delivered" in outcomes[restarted_at:], timeout=30)
                    await until(lambda: not watchdog.recovery.journal.open_incidents(), timeout=30)
                    heard_after = activity["loja"].last_at
                    await until(lambda: activity["loja"].last_at > heard_after, timeout=10)  # webhooks too
                finally:
                    customers.cancel()
                done = actions(watchdog)
                [incident] = watchdog.recovery.journal.history()
    finally:
        restarted = docker_engine.containers.get(name).attrs["State"]["StartedAt"]
        dockerkit.remove(docker_engine, name)
    assert restarted != started_before
    assert [kind for kind, _ in done] == ["restart_container"]
    assert incident["key"] == "service:evolution" and incident["summary"].startswith("no inbound message for")
    assert set(outcomes[:lost_from]) == {"delivered"}
    assert "lost" in outcomes[lost_from:restarted_at]  # silently: the instance said `open` all along


def _journal_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    import sqlite3

    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return list(db.execute(query))
        except sqlite3.OperationalError:
            return []


def test_sigkill_mid_action_resumes_without_repeating_inside_the_cooldown() -> None:
    import os
    import signal
    import subprocess
    import sys

    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        stack.evolution.reconnect_seconds = 6.0  # the restart's verification takes a while: time to kill it
        env = {**os.environ, **stack.env(**AUTO, WATCHDOG_RESTART_TIMEOUT_SECONDS="30")}
        journal = Path(env["WATCHDOG_STATE_PATH"])
        first = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            stack.fault("evolution", "socket_closed", instance="loja")
            deadline = time.monotonic() + 30
            while not _journal_rows(journal, "SELECT id FROM actions WHERE result = 'running'"):
                assert time.monotonic() < deadline, "no action started"
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            first.kill() if first.poll() is None else None
        second_log = journal.with_name("second.log")
        with second_log.open("w") as log:
            second = subprocess.Popen([sys.executable, "-m", "watchdog", "run"], env=env, stderr=log)
        try:
            deadline = time.monotonic() + 40
            while _journal_rows(
                journal, "SELECT key FROM incidents WHERE closed_at IS NULL"
            ) or not _journal_rows(journal, "SELECT key FROM incidents"):
                assert time.monotonic() < deadline, "the incident never closed:\n" + second_log.read_text()
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        rows = _journal_rows(journal, "SELECT kind, result, started_at, finished_at FROM actions ORDER BY id")
    # Killed after its request reached Evolution, the restart shows its effect and is not repeated;
    # killed before, the same rung is tried once more, and only after its cooldown.
    assert [(kind, result) for kind, result, *_ in rows][:1] == [("restart_instance", "interrupted")]
    assert [(kind, result) for kind, result, *_ in rows[1:]] in ([], [("restart_instance", "ok")])
    if len(rows) == 2:
        assert rows[1][2] - rows[0][3] >= 10.0  # the backoff after the interrupted attempt
    assert stack.evolution.instances["loja"].state == "open"


async def test_maintenance_silences_recovery_over_http_and_cli_then_ends() -> None:
    import os
    import subprocess
    import sys

    port = free_port()
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        env = stack.env(**AUTO, WATCHDOG_LISTEN=f"127.0.0.1:{port}", WATCHDOG_ADMIN_TOKEN="admin-secret")
        cli = [sys.executable, "-m", "watchdog", "maintenance"]
        async with daemon_for(Settings.from_env(env)) as watchdog:
            async with httpx.AsyncClient() as client:
                refused = await client.post(f"http://127.0.0.1:{port}/api/maintenance", json={"minutes": 5})
            started = await asyncio.to_thread(
                subprocess.run,
                [*cli, "--minutes", "10"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
            )
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(lambda: "instance:loja" in watchdog.recovery.journal.open_incidents())
            await asyncio.sleep(2.5)  # several recovery ticks
            silenced = actions(watchdog)
            ended = await asyncio.to_thread(
                subprocess.run, [*cli, "--end"], env={**os.environ, **env}, capture_output=True, text=True
            )
            await until(lambda: ("restart_instance", "ok") in actions(watchdog))
    assert refused.status_code == 403
    assert started.returncode == 0 and "recovery silenced until" in started.stdout
    assert silenced == []
    assert ended.returncode == 0 and ended.stdout.strip() == "maintenance ended"


async def test_docker_executor_restarts_a_stopped_container_and_reports_a_missing_one(
    docker_engine: Any, tmp_path: Path
) -> None:
    from watchdog.clock import SystemClock
    from watchdog.recovery.executors import DockerExecutor

    name = "evo-watchdog-test-restartable"
    dockerkit.run_python(docker_engine, name, ["-c", "import time; time.sleep(600)"], tmp_path)
    docker_engine.containers.get(name).stop(timeout=1)
    executor = DockerExecutor(
        dockerkit.DOCKER_URL,
        SystemClock(),
        stop_timeout=1,
        ready_deadline=20,
        ready_checks={},
    )
    try:
        revived = await executor.restart("evolution", [name])
        missing = await executor.restart("evolution", ["evo-watchdog-no-such-container"])
        status = docker_engine.containers.get(name).status
    finally:
        dockerkit.remove(docker_engine, name)
    assert revived.result == "ok" and status == "running"
    assert missing.result == "failed" and "container missing" in missing.detail


def _engine_settings(tmp_path: Path) -> Settings:
    """Shipped defaults (probe 15 s, 3 confirming cycles, 60 s settle), restarts through real commands."""
    return Settings.from_env(
        {
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
            "WATCHDOG_RESTART_COMMAND_EVOLUTION": f"touch {tmp_path / 'evolution'}",
            "WATCHDOG_RESTART_COMMAND_DIFY": f"touch {tmp_path / 'dify'}",
        }
    )


async def test_an_evolution_500_is_confirmed_restarted_once_and_its_warm_up_pages_nobody(
    tmp_path: Path,
) -> None:
    """The engine's wiring: attribution counts one cycle per turn, the settle window is read back from
    the journal, and only a fault confirmed again after it goes on to a page."""
    clock = FakeClock()
    down = [Finding("evolution_down", "evolution", Severity.CRITICAL, "instances: HTTP 500")]
    async with httpx.AsyncClient() as http:
        engine = build_engine(
            _engine_settings(tmp_path), clock=clock, http=http, metrics=Metrics(CollectorRegistry())
        )
        turns: list[list[str]] = []
        for _ in range(12):  # three minutes of a 500 that never goes away
            turns.append([a.kind for a in await engine.tick(down)])
            clock.advance(15)
        engine.journal.close()
    assert turns[:3] == [[], [], ["restart_container"]]  # confirmed on the third probe cycle
    assert (tmp_path / "evolution").exists() and not (tmp_path / "dify").exists()
    # settle (60 s: turns 4 to 6), then three cycles to confirm the fault again, then on-call
    assert turns[3:] == [[], [], [], [], [], ["page"], [], [], []]


async def test_dify_errors_in_evolutions_log_restart_dify_never_evolution(tmp_path: Path) -> None:
    evidence = {"rule": "http_500", "count": 69, "container": "evolution_api", "service": "dify"}
    findings = [
        Finding("dify_down", "dify", Severity.CRITICAL, "liveness: timed out", {"errors": ["timeout"]}),
        Finding("error_burst", "container:evolution_api", Severity.CRITICAL, "69 http_500 lines", evidence),
    ]
    async with httpx.AsyncClient() as http:
        engine = build_engine(
            _engine_settings(tmp_path), clock=FakeClock(), http=http, metrics=Metrics(CollectorRegistry())
        )
        alone = await engine.tick(findings[1:])  # Evolution's log alone: nothing
        first = await engine.tick(findings)  # probe + log lines: two signals, confirmed at once
        engine.journal.close()
    assert alone == [] and [(a.kind, a.target) for a in first] == [("restart_container", "service:dify")]
    assert (tmp_path / "dify").exists() and not (tmp_path / "evolution").exists()
