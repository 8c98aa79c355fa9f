"""Two `python -m watchdog run` replicas against the same emulators and a real redis-server: exactly one
acts, a killed leader is replaced within two lease periods without repeating its action inside the
cooldown, and while Redis is away neither acts (both keep observing and say why)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.infra import free_port, require_binary
from tests.integration.stack import Stack, running_stack, wait_until
from watchdog.errors import CoordinationError
from watchdog.recovery.journal import Journal
from watchdog.replicas.store import RedisLeaseStore
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
LEASE = 3.0  # seconds; a renewal every second
AUTO = {"WATCHDOG_RECOVERY_MODE": "auto", "WATCHDOG_RECOVERY_HOLD_SECONDS": "1"}


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence; stop() and start() again."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        command += ["no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, 15, "redis-server answering PING")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(require_binary("redis-server", "redis-server"), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Replica:
    """One watchdog process; read through its HTTP API and, once stopped, its journal."""

    def __init__(self, name: str, stack: Stack, redis_url: str) -> None:
        self.name = name
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.journal_path = stack.state_dir / f"{name}.db"
        self.log_path = stack.state_dir / f"{name}.log"
        env = stack.env(
            **AUTO,
            WATCHDOG_REDIS_URL=redis_url,
            WATCHDOG_LEASE_SECONDS=str(LEASE),
            WATCHDOG_LISTEN=f"127.0.0.1:{port}",
            WATCHDOG_STATE_PATH=str(self.journal_path),
        )
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "watchdog", "run"],
                env={**os.environ, **env},
                cwd=stack.state_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def status(self) -> dict[str, Any]:
        try:
            response = httpx.get(f"{self.url}/api/status", timeout=3)
            return dict(response.json()) if response.status_code == 200 else {}
        except httpx.HTTPError:
            return {}

    def leadership(self) -> dict[str, Any]:
        return dict(self.status().get("recovery", {}).get("leadership", {}))

    def leads(self) -> bool:
        return self.leadership().get("leader") is True

    def metric(self, name: str) -> float | None:
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=3).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    def finding_kinds(self) -> set[str]:
        return {f["kind"] for f in self.status().get("findings", [])}

    def closed(self, key: str) -> bool:
        return any(i["key"] == key and i["closed_at"] for i in self.status().get("incidents", []))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def actions(self) -> list[tuple[str, float, str]]:
        """(kind, started_at, result) of every action in this replica's journal, copies included."""
        journal = Journal(self.journal_path)
        try:
            return [(a.kind, a.started_at, a.result) for a in journal.recent_actions(0)]
        finally:
            journal.close()


@contextmanager
def two_replicas(stack: Stack, redis_url: str) -> Iterator[tuple[Replica, Replica]]:
    with ExitStack() as cleanup:
        replicas = []
        for name in ("a", "b"):
            replica = Replica(name, stack, redis_url)
            cleanup.callback(replica.stop)
            replicas.append(replica)
        a, b = replicas
        try:
            wait_until(lambda: a.status() != {} and b.status() != {}, 30, "both replicas serving")
            yield a, b
        except BaseException:
            for replica in replicas:
                replica.stop()
                sys.stderr.write(f"--- {replica.name} ---\n{replica.log_path.read_text()[-4000:]}\n")
            raise


def leader_of(a: Replica, b: Replica) -> tuple[Replica, Replica]:
    """Wait until exactly one leads and both name it; returns (leader, follower)."""
    views: list[dict[str, Any]] = []

    def settled() -> bool:
        views[:] = [a.leadership(), b.leadership()]
        leaders = [v for v in views if v.get("leader") is True]
        return len(leaders) == 1 and views[0].get("leader_id") == views[1].get("leader_id")

    wait_until(settled, 20, "one leader named by both replicas")
    return (a, b) if views[0]["leader"] else (b, a)


def count_restarts(stack: Stack) -> list[float]:
    """Instance restarts as the emulator receives them (whoever sends them)."""
    seen: list[float] = []
    real = stack.evolution.restart

    def counted(name: str) -> bool:
        seen.append(time.monotonic())
        return real(name)

    stack.evolution.restart = counted  # type: ignore[method-assign]
    return seen


def one_instance() -> EvolutionOptions:
    return EvolutionOptions(instances=("loja",), debounce_seconds=0)


def test_exactly_one_replica_acts_and_a_fault_is_repaired_once(redis_server: RedisServer) -> None:
    with running_stack(one_instance()) as stack:
        restarts = count_restarts(stack)
        stack.evolution.reconnect_seconds = 2.0  # long enough for both to see the fault
        with two_replicas(stack, redis_server.url) as (a, b):
            leader, follower = leader_of(a, b)
            assert (leader.metric("watchdog_leader"), follower.metric("watchdog_leader")) == (1.0, 0.0)
            # state changes belong where recovery runs: the follower refuses them and names the leader
            refused = [
                httpx.delete(f"{follower.url}/api/maintenance", timeout=3),
                httpx.post(f"{follower.url}/api/maintenance", json={"minutes": 5}, timeout=3),
                httpx.post(f"{follower.url}/api/incidents/instance:loja/ack", timeout=3),
            ]
            assert [r.status_code for r in refused] == [409, 409, 409]
            assert all("does not lead" in r.json()["error"] for r in refused)
            assert httpx.delete(f"{leader.url}/api/maintenance", timeout=3).status_code == 200
            stack.fault("evolution", "socket_closed", instance="loja")
            wait_until(
                lambda: "instance_disconnected" in follower.finding_kinds(), 10, "the follower observing"
            )
            wait_until(lambda: leader.closed("instance:loja"), 30, "the leader closing the incident")
            time.sleep(LEASE)  # more recovery turns for a second action to show up, were there one
            assert (leader.metric("watchdog_leader") or 0) + (follower.metric("watchdog_leader") or 0) <= 1
        own = leader.actions()
        everything = own + follower.actions()
    assert len(restarts) == 1
    assert {(kind, started) for kind, started, _ in everything} == {("restart_instance", own[0][1])}
    assert [result for _, _, result in own] == ["ok"]


def test_killing_the_leader_mid_action_hands_over_without_repeating_inside_the_cooldown(
    redis_server: RedisServer,
) -> None:
    with running_stack(one_instance()) as stack:
        restarts = count_restarts(stack)
        stack.evolution.reconnect_seconds = 8.0  # the restart is still being verified when the leader dies
        with two_replicas(stack, redis_server.url) as (a, b):
            leader, follower = leader_of(a, b)
            stack.fault("evolution", "socket_closed", instance="loja")
            wait_until(lambda: len(restarts) == 1, 20, "the leader restarting the instance")
            killed_at = time.monotonic()
            leader.kill()
            wait_until(follower.leads, 4 * LEASE, "the follower taking over")
            took_over = time.monotonic() - killed_at
            wait_until(lambda: follower.closed("instance:loja"), 30, "the new leader closing the incident")
            assert follower.leadership()["store_error"] is None
        copied = follower.actions()
        dead = leader.actions()
    assert took_over <= 2 * LEASE, f"takeover took {took_over:.1f}s"
    assert len(restarts) == 1  # the instance came back inside the cooldown: no second restart
    assert dead == [("restart_instance", dead[0][1], "running")]  # cut off mid-verification
    assert copied == [("restart_instance", dead[0][1], "interrupted")]  # taken over, never repeated


def test_while_redis_is_away_neither_acts_both_report_it_and_acting_resumes(
    redis_server: RedisServer,
) -> None:
    with running_stack(one_instance()) as stack:
        restarts = count_restarts(stack)
        with two_replicas(stack, redis_server.url) as (a, b):
            leader_of(a, b)
            redis_server.stop()

            def both_report_it() -> bool:
                views = [a.leadership(), b.leadership()]
                return all(v.get("leader") is False and v.get("store_error") for v in views)

            wait_until(both_report_it, 2 * LEASE + 5, "both replicas reporting the lost lease store")
            stack.fault("evolution", "socket_closed", instance="loja")
            wait_until(
                lambda: all("instance_disconnected" in r.finding_kinds() for r in (a, b)),
                10,
                "both replicas still observing",
            )
            time.sleep(3)  # three probe and recovery turns with the fault present and nobody leading
            assert restarts == []
            assert all((r.metric("watchdog_lease_errors_total") or 0) > 0 for r in (a, b))
            assert all(r.metric("watchdog_leader") == 0.0 for r in (a, b))
            assert all(httpx.get(f"{r.url}/healthz", timeout=3).status_code == 200 for r in (a, b))
            redis_server.start()
            leader, _ = leader_of(a, b)
            wait_until(
                lambda: leader.closed("instance:loja"), 30, "the leader repairing after Redis returned"
            )
            assert leader.leadership()["store_error"] is None
    assert len(restarts) == 1


async def test_the_store_only_touches_its_own_lease_and_hides_the_password(redis_server: RedisServer) -> None:
    store = RedisLeaseStore(redis_server.url, "evo-watchdog-test:leader", timeout=1)
    try:
        assert await store.acquire("a", 5000)
        assert not await store.acquire("b", 5000)
        assert not await store.renew("b", 5000) and not await store.release("b")
        assert not await store.publish("b", "forged")
        assert await store.publish("a", "record") and await store.handoff() == "record"
        assert await store.holder() == "a" and await store.renew("a", 100)
        await asyncio.sleep(0.3)
        assert await store.holder() is None  # renewed to 100 ms: expired
        assert await store.acquire("b", 5000) and not await store.release("a")
        assert await store.release("b") and await store.holder() is None
    finally:
        await store.aclose()
    gone = RedisLeaseStore(f"redis://:s3cret-pass@127.0.0.1:{free_port()}/0", "k", timeout=0.5)
    try:
        with pytest.raises(CoordinationError) as caught:
            await gone.acquire("a", 5000)
    finally:
        await gone.aclose()
    assert "s3cret-pass" not in str(caught.value)
