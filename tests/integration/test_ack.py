"""Acknowledging a page over the real HTTP endpoint and the CLI, against a daemon and the emulators."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration.stack import running_stack
from tests.integration.test_recovery import AUTO, actions, daemon_for, until
from watchdog.config import Settings
from watchdog.serving import free_port
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
TOKEN = "ack-admin-secret"


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "watchdog", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


async def test_a_paged_instance_is_acknowledged_and_the_ladder_runs_again(receiver: Receiver) -> None:
    port = free_port()
    notify = receiver.url.replace("http://", "json://") + "/oncall"
    base = f"http://127.0.0.1:{port}/api/incidents"
    admin = {"Authorization": f"Bearer {TOKEN}"}
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        env = stack.env(
            **AUTO,
            WATCHDOG_LISTEN=f"127.0.0.1:{port}",
            WATCHDOG_ADMIN_TOKEN=TOKEN,
            WATCHDOG_NOTIFY_URLS=notify,
        )
        async with daemon_for(Settings.from_env(env)) as watchdog:
            # A permanent fault: the instance restart is refused and there is no container to restart.
            stack.fault("evolution", "instance_unloaded", instance="loja")
            await until(lambda: ("page", "ok") in actions(watchdog))
            async with httpx.AsyncClient(timeout=10) as client:
                refused = await client.post(f"{base}/instance%3Aloja/ack")
                unknown = await client.post(f"{base}/instance%3Anowhere/ack", headers=admin)
                acked = await cli(env, "ack", "instance:loja")
                again = await client.post(f"{base}/instance%3Aloja/ack", headers=admin)
            # The ladder runs again from L2: the restart fails again, and on-call is paged again.
            await until(lambda: [kind for kind, _ in actions(watchdog)].count("page") == 2)
            listed = await cli(env, "incidents", "--json", "--limit", "5")
            table = await cli(env, "incidents")
            done = actions(watchdog)
    assert refused.status_code == 403 and "admin token" in refused.json()["error"]
    assert unknown.status_code == 404 and unknown.json()["error"] == "no open incident 'instance:nowhere'"
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.strip() == "acknowledged instance:loja: recovery acts again from L2"
    assert again.status_code == 409 and "not paged" in again.json()["error"]
    assert done == [
        ("restart_instance", "failed"),
        ("page", "ok"),
        ("ack", "ok"),
        ("restart_instance", "failed"),
        ("page", "ok"),
    ]
    assert listed.returncode == 0, listed.stderr
    incident = json.loads(listed.stdout)[0]
    assert incident["key"] == "instance:loja" and incident["circuit_open"] is True
    assert [a["kind"] for a in incident["actions"]] == [
        "restart_instance",
        "page",
        "ack",
        "restart_instance",
        "page",
    ]
    assert table.returncode == 0 and "paged" in table.stdout and " ack " in table.stdout
    titles = [body["title"] for _, _, body in receiver.posts]
    assert titles.count("Acknowledged: instance:loja") == 1


async def test_ack_without_a_daemon_says_so() -> None:
    port = free_port()
    env = {
        "EVOLUTION_URL": "http://127.0.0.1:9",
        "EVOLUTION_API_KEY": "k",
        "WATCHDOG_LISTEN": f"127.0.0.1:{port}",
    }
    done = await cli(env, "ack", "instance:loja")
    assert done.returncode == 1 and "no daemon answers" in done.stderr
