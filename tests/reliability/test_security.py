"""Security: no open listener without a webhook token, admin-only state changes, and recovery that only
ever acts on configured (or Evolution-reported) instances, never on a name that arrived in a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.stack import running_stack
from tests.reliability.harness import running, total, until
from watchdog.app import Watchdog
from watchdog.clock import FakeClock, SystemClock
from watchdog.config import Settings
from watchdog.errors import ConfigError
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity
from watchdog.probes.suite import http_client
from watchdog.recovery.engine import build_engine
from watchdog.serving import ThreadedServer
from watchdog.signals.webhook import Envelope, parse_envelope
from watchdog.sim.runner import EvolutionOptions

ADMIN = "ADMIN-TOKEN-7d1e"
HOOK = "HOOK-TOKEN-4b2a"


@pytest.mark.parametrize("listen", ["0.0.0.0:8787", "[::]:8787", "watchdog:8787", "192.168.1.10:8787"])
def test_listening_beyond_loopback_without_a_webhook_token_is_refused_saying_what_to_set(listen: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"WATCHDOG_LISTEN": listen})
    message = str(caught.value)
    assert message.startswith("WATCHDOG_LISTEN=") and "\n" not in message
    assert "WATCHDOG_WEBHOOK_TOKEN" in message and "WATCHDOG_ALLOW_OPEN_WEBHOOKS=true" in message


@pytest.mark.parametrize("listen", ["127.0.0.1:8787", "127.0.0.9:8787", "[::1]:8787", "localhost:8787"])
def test_loopback_needs_no_token(listen: str) -> None:
    assert Settings.from_env({"WATCHDOG_LISTEN": listen}).listen[1] == 8787


def test_beyond_loopback_with_a_token_or_explicitly_open() -> None:
    guarded = Settings.from_env({"WATCHDOG_LISTEN": "0.0.0.0:8787", "WATCHDOG_WEBHOOK_TOKEN": HOOK})
    assert guarded.webhook_token == HOOK
    opened = Settings.from_env({"WATCHDOG_LISTEN": "0.0.0.0:8787", "WATCHDOG_ALLOW_OPEN_WEBHOOKS": "true"})
    assert opened.allow_open_webhooks and opened.public()["allow_open_webhooks"] is True


def test_run_refuses_to_start_open_and_exits_2_with_the_one_line(tmp_path: Path) -> None:
    """The daemon itself (as a container listening on 0.0.0.0 would start it) stops before binding."""
    env = {
        **os.environ,
        "WATCHDOG_LISTEN": "0.0.0.0:0",
        "WATCHDOG_STATE_PATH": str(tmp_path / "j.db"),
    }
    env.pop("WATCHDOG_WEBHOOK_TOKEN", None)
    env.pop("WATCHDOG_ALLOW_OPEN_WEBHOOKS", None)
    done = subprocess.run(
        [sys.executable, "-m", "watchdog", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "WATCHDOG_WEBHOOK_TOKEN" in done.stderr and "WATCHDOG_ALLOW_OPEN_WEBHOOKS=true" in done.stderr
    assert not (tmp_path / "j.db").exists()


def app_for(tmp_path: Path, **env: str) -> Watchdog:
    settings = Settings.from_env({"WATCHDOG_STATE_PATH": str(tmp_path / "j.db"), **env})
    return Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http_client(settings))


def test_state_changes_need_the_admin_token_not_the_webhook_token(tmp_path: Path) -> None:
    """Expected: with WATCHDOG_ADMIN_TOKEN set, POST and DELETE /api/maintenance and POST
    /api/incidents/{key}/ack answer 403 without a bearer, with a wrong one, with the webhook token or the
    admin token in another header, and change nothing; only `Authorization: Bearer <admin token>` works."""
    watchdog = app_for(tmp_path, WATCHDOG_ADMIN_TOKEN=ADMIN, WATCHDOG_WEBHOOK_TOKEN=HOOK)
    with ThreadedServer(watchdog.http_app()) as server, httpx.Client(base_url=server.url) as client:
        refused = [
            client.post("/api/maintenance", json={"minutes": 5}, headers=headers)
            for headers in (
                {},
                {"authorization": "Bearer nope"},
                {"authorization": f"Bearer {HOOK}"},
                {"x-watchdog-token": ADMIN},
                {"authorization": ADMIN},
            )
        ]
        refused.append(client.delete("/api/maintenance", headers={"authorization": f"Bearer {HOOK}"}))
        ack = "/api/incidents/instance:loja/ack"
        refused.append(client.post(ack, headers={"x-watchdog-token": HOOK}))
        refused.append(client.post(ack, headers={"authorization": "Bearer x"}))
        unknown = client.post(ack, headers={"authorization": f"Bearer {ADMIN}"})
        unchanged = watchdog.recovery.policy.maintenance_until
        allowed = client.post(
            "/api/maintenance", json={"minutes": 5}, headers={"authorization": f"Bearer {ADMIN}"}
        )
        ended = client.delete("/api/maintenance", headers={"authorization": f"Bearer {ADMIN}"})
    watchdog.recovery.journal.close()
    assert [r.status_code for r in refused] == [403] * 8
    assert unknown.status_code == 404  # past the admin check: there is no such incident
    assert all(ADMIN not in r.text for r in refused)
    assert unchanged == 0.0
    assert allowed.status_code == 200 and allowed.json()["maintenance_until"] > 0
    assert ended.status_code == 200 and watchdog.recovery.policy.maintenance_until == 0.0


async def test_without_an_admin_token_only_this_machine_may_change_state(tmp_path: Path) -> None:
    """Expected: no admin token means loopback clients only: a remote client gets 403."""
    watchdog = app_for(tmp_path)
    remote = httpx.ASGITransport(app=watchdog.http_app(), client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://watchdog") as client:
        assert (await client.post("/api/maintenance", json={"minutes": 5})).status_code == 403
    assert watchdog.recovery.policy.maintenance_until == 0.0
    with ThreadedServer(watchdog.http_app()) as server:
        async with httpx.AsyncClient(base_url=server.url) as local:
            assert (await local.post("/api/maintenance", json={"minutes": 5})).status_code == 200
    watchdog.recovery.journal.close()


def down(instance: str) -> Finding:
    return Finding("instance_disconnected", f"evolution:{instance}", Severity.CRITICAL, "not open")


def inbound(instance: str, n: int) -> dict[str, Any]:
    jid = f"55119{n:08d}@s.whatsapp.net"
    return {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {"remoteJid": jid, "fromMe": False, "id": f"FORGED-{instance}-{n}"},
            "messageType": "conversation",
            "message": {"conversation": "Oi"},
        },
    }


@pytest.mark.integration
async def test_forged_instance_names_never_lead_to_an_action() -> None:
    """Expected: webhooks (with a valid token) for an instance Evolution has but EVOLUTION_INSTANCES
    leaves out (`outra`) and for one that exists nowhere (`fantasma`), each with enough unanswered
    customers for repairs, are counted as ignored_unwatched and never open an incident or reach Evolution;
    the same forged traffic on the watched `loja` does (the control: an L1 per contact, since customers
    stalled on an instance that says `open` are session faults, docs/recovery.md)."""
    calls: list[tuple[str, str]] = []
    with running_stack(EvolutionOptions(instances=("loja", "outra"), debounce_seconds=0)) as stack:
        real_restart, real_change = stack.evolution.restart, stack.evolution.change_status
        stack.evolution.restart = lambda name: calls.append(("restart", name)) or real_restart(name)  # type: ignore[method-assign]
        stack.evolution.change_status = lambda name, *rest: (  # type: ignore[method-assign]
            calls.append(("change_status", name)) or real_change(name, *rest)
        )
        settings = stack.settings(
            WATCHDOG_RECOVERY_MODE="auto",
            EVOLUTION_INSTANCES="loja",
            WATCHDOG_WEBHOOK_TOKEN=HOOK,
        )
        async with running(settings) as (watchdog, daemon):
            await until(lambda: watchdog.board.cycles >= 1, 30, "a first probe cycle")
            async with httpx.AsyncClient(headers={"x-watchdog-token": HOOK}) as client:
                for n in range(4):
                    for instance in ("outra", "fantasma", "loja"):
                        body = json.dumps(inbound(instance, n)).encode()
                        answer = await client.post(f"{daemon.url}/webhook/evolution", content=body)
                        answer.raise_for_status()
            await until(lambda: any(name == "loja" for _, name in calls), 60, "the control repair on loja")
            cycles = watchdog.board.cycles
            await until(lambda: watchdog.board.cycles >= cycles + 3, 30, "three more cycles")
            journal = json.dumps(watchdog.recovery.journal.history(limit=100))
    assert {name for _, name in calls} == {"loja"}
    assert "outra" not in journal and "fantasma" not in journal and "contact:loja:" in journal
    assert total(watchdog, "watchdog_webhook_events_total", outcome="ignored_unwatched") == 8
    assert set(watchdog.conversations.activity) == {"loja"}


async def test_recovery_refuses_instances_outside_the_watched_set_even_from_findings(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The second line of defence: a finding naming an unwatched instance (however it got there) opens
    no incident and plans no action; the same finding on a watched instance does."""
    settings = Settings.from_env(
        {
            "EVOLUTION_INSTANCES": "loja",
            "WATCHDOG_RECOVERY_MODE": "dry-run",
            "WATCHDOG_STATE_PATH": str(tmp_path / "j.db"),
            "WATCHDOG_CONFIRM_CYCLES": "1",  # one tick, one confirmed fault: the watched set is the subject
        }
    )

    async with httpx.AsyncClient() as http:
        engine = build_engine(settings, clock=clock, http=http, metrics=Metrics(CollectorRegistry()))
        forged = await engine.tick([down("fantasma")])
        control = await engine.tick([down("loja")])
        keys = list(engine.journal.open_incidents())
        engine.journal.close()
    assert forged == [] and [a.target for a in control] == ["instance:loja"]
    assert keys == ["instance:loja"]


def envelope(instance: str, n: int) -> Envelope:
    return parse_envelope(inbound(instance, n))


@pytest.mark.integration
async def test_empty_evolution_instances_means_what_evolution_reports(tmp_path: Path) -> None:
    """Expected with EVOLUTION_INSTANCES empty: before Evolution has listed its instances, webhooks are
    tracked (nothing to tell them apart by) but recovery acts on no instance at all; once a probe cycle
    has listed them, a name Evolution does not have is ignored and never repaired, its own are."""
    with running_stack(EvolutionOptions(instances=("loja", "suporte"), debounce_seconds=0)) as stack:
        settings = stack.settings(WATCHDOG_RECOVERY_MODE="dry-run", WATCHDOG_CONFIRM_CYCLES="1")
        async with http_client(settings) as http:
            watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
            early = watchdog.ingest(envelope("fantasma", 1))
            early_actions = await watchdog.recovery.tick([down("suporte")])
            await watchdog.probe_cycle()
            late = [watchdog.ingest(envelope(name, 2)) for name in ("fantasma", "suporte")]
            forged = await watchdog.recovery.tick([down("fantasma")])
            real = await watchdog.recovery.tick([down("suporte")])
            watchdog.recovery.journal.close()
    assert early == "accepted" and early_actions == []
    assert late == ["ignored_unwatched", "accepted"]
    assert forged == [] and [a.target for a in real] == ["instance:suporte"]
