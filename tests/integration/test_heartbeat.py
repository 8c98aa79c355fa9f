"""The end-to-end heartbeat over real HTTP: a prober instance writes to the bot's number through the
emulators' small WhatsApp network (sim/network.py), the watchdog reads the legs from the webhooks
(the stacks and their settings: tests/integration/heartbeat_stack.py).
"""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration import dockerkit
from tests.integration.heartbeat_stack import (
    BOT,
    INTERVAL,
    PROBER,
    beats_ok,
    bot_options,
    dify_server,
    fast,
    heartbeat_settings,
    one_server_stack,
    prober_options,
    sample,
    two_emulators,
    two_server_env,
)
from tests.integration.stack import DIFY_KEY
from tests.integration.test_recovery import AUTO, actions, daemon_for, until
from watchdog.app import Watchdog
from watchdog.config import Settings
from watchdog.serving import ThreadedServer, free_port
from watchdog.signals.heartbeat import OK
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import build_evolution

pytestmark = pytest.mark.integration
ANA = "5511987600001@s.whatsapp.net"


def last(watchdog: Watchdog, instance: str = "loja") -> dict[str, Any]:
    assert watchdog.heartbeat is not None
    return dict(watchdog.heartbeat.view()["instances"].get(instance, {}))


def kinds(watchdog: Watchdog) -> set[str]:
    return {f.kind for f in watchdog.board.findings}


async def test_healthy_heartbeats_prove_the_path_and_never_touch_customer_figures() -> None:
    listen = free_port()
    with one_server_stack(listen) as stack:
        # a bare number: EVOLUTION_INSTANCES is empty, loja is found at run time
        settings = heartbeat_settings(stack, listen, BOT, WATCHDOG_E2E_MESSAGE="oi, robô?")
        async with daemon_for(fast(settings, interval=3.0)) as watchdog:
            await until(lambda: beats_ok(watchdog) >= 3, timeout=30)
            stack.inbound(ANA)  # a customer, beside the heartbeat
            await until(
                lambda: sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="text")
            )
            async with httpx.AsyncClient() as client:
                status = (await client.get(watchdog.url + "/api/status")).json()  # type: ignore[attr-defined]
            bot_sessions = dict(stack.evolution.instances["loja"].sessions)
            conversations = watchdog.conversations
            assert watchdog.watched_instances() == {"loja"}  # the prober is never watched
            assert set(conversations.activity) == {"loja"} and conversations.activity["loja"].count == 1
            assert [t.contact for t in conversations.recent["loja"]] == [
                conversations.recent["loja"][0].contact
            ]
            assert sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="text") == 1
            assert sample(
                watchdog, "watchdog_webhook_events_total", event="messages.upsert", outcome="heartbeat"
            )
            assert sample(watchdog, "watchdog_e2e_success", instance="loja") == 1
            assert kinds(watchdog) == set()
    heartbeat = status["heartbeat"]
    assert heartbeat["message"] == "oi, robô?" and heartbeat["interval_seconds"] == 3.0
    assert heartbeat["prober"] == "sonda" and heartbeat["deadline_seconds"] == 1.0
    loja = heartbeat["instances"]["loja"]
    assert loja["result"] == OK and set(loja["legs"]) == {"received", "replied", "delivered", "round_trip"}
    assert status["settings"]["e2e_message"] == "oi, robô?"
    assert "evolution:sonda" not in {p["target"] for p in status["probes"]}
    assert f"{PROBER}@s.whatsapp.net" not in bot_sessions  # reset after each heartbeat
    assert ANA in bot_sessions  # the customer's own session is left alone
    assert PROBER not in str(status["heartbeat"]) and BOT not in str(status["heartbeat"])


async def test_a_hanging_dify_is_a_heartbeat_without_reply_and_a_dify_repair() -> None:
    listen = free_port()
    with one_server_stack(listen) as stack:
        settings = heartbeat_settings(
            stack,
            listen,
            f"loja={BOT}",
            WATCHDOG_RECOVERY_MODE="dry-run",
            WATCHDOG_RESTART_COMMAND_DIFY="true",
        )
        async with daemon_for(fast(settings)) as watchdog:
            await until(lambda: beats_ok(watchdog) >= 1, timeout=20)
            stack.fault("dify", "hang")  # chat hangs; Dify's liveness still answers
            await until(lambda: "e2e_no_reply" in kinds(watchdog), timeout=3 * INTERVAL)
            await until(lambda: ("restart_container", "dry_run") in actions(watchdog), timeout=20)
            stack.dify.faults.clear("hang")
            [finding] = [f for f in watchdog.board.findings if f.kind == "e2e_no_reply"]
            assert finding.target == "evolution:loja" and finding.evidence["attempts"] == 2
            assert finding.evidence["integration"] == "dify"  # loja's only bot: a Dify restart is right
            assert "e2e_not_received" not in kinds(watchdog)  # the bot instance did receive it
            assert last(watchdog)["result"] == "e2e_no_reply"
            assert sample(watchdog, "watchdog_e2e_success", instance="loja") == 0
            [incident] = watchdog.recovery.journal.history()
            assert incident["key"] == "service:dify"
            assert watchdog.conversations.tracker.pending() == []  # the heartbeat waits on no customer table


async def test_the_prober_and_the_bot_on_different_emulators(tmp_path: Path) -> None:
    listen = free_port()
    with two_emulators(listen) as (prober_url, bot_url):
        settings = Settings.from_env(two_server_env(listen, prober_url, bot_url, tmp_path))
        async with daemon_for(fast(settings, interval=3.0)) as watchdog:
            await until(lambda: beats_ok(watchdog) >= 2, timeout=30)
            assert last(watchdog)["result"] == OK and kinds(watchdog) == set()
            assert watchdog.conversations.activity == {}


async def test_a_silent_dead_processor_is_found_by_the_heartbeat_and_repaired_at_l3(
    docker_engine: Any, tmp_path: Path
) -> None:
    """One watched bot instance, no customers, no Dify probe, no log: the heartbeat alone finds the
    processor that died without a word (within two heartbeat intervals) and L3 restarts the container.
    The bot runs in that container, the prober on another emulator in this process."""
    name = "evo-watchdog-test-heartbeat-l3"
    listen, bot_port, prober_port = free_port(), free_port(), free_port()
    hook = f"http://127.0.0.1:{listen}/webhook/evolution"
    bot_url, prober_url = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{prober_port}"
    with ExitStack() as stack:
        dify = dify_server(stack)
        command = [
            "-m", "watchdog", "sim", "evolution", "--port", str(bot_port), "--api-key", "bot-key",
            "--instances", "loja", "--number", f"loja={BOT}", "--dify-url", dify.url + "/v1",
            "--dify-key", DIFY_KEY, "--debounce", "0", "--time-scale", "0.1", "--webhook-url", hook,
            "--peer", prober_url,
        ]  # fmt: skip
        dockerkit.run_python(docker_engine, name, command, tmp_path)
        stack.callback(dockerkit.remove, docker_engine, name)
        prober = prober_options(bot_url, api_key="prober-key", webhook_url=hook, time_scale=0.1)
        stack.enter_context(ThreadedServer(build_evolution(prober)[1], port=prober_port))
        await _answers(bot_url)
        env = two_server_env(listen, prober_url, bot_url, tmp_path)
        env.update(EVOLUTION_CONTAINER=name, WATCHDOG_RESTART_TIMEOUT_SECONDS="30", **AUTO)
        async with daemon_for(fast(Settings.from_env(env))) as watchdog:
            await until(lambda: beats_ok(watchdog) >= 1, timeout=30)
            started_before = docker_engine.containers.get(name).attrs["State"]["StartedAt"]
            async with httpx.AsyncClient(base_url=bot_url, timeout=5) as sim:
                (await sim.post("/_sim/faults", json={"name": "processor_dead"})).raise_for_status()
            faulted = time.monotonic()
            await until(lambda: "e2e_not_received" in kinds(watchdog), timeout=3 * INTERVAL)
            found_after = time.monotonic() - faulted
            await until(lambda: ("restart_container", "ok") in actions(watchdog), timeout=60)
            repaired = beats_ok(watchdog)
            await until(lambda: beats_ok(watchdog) > repaired, timeout=3 * INTERVAL + 30)  # proven again
            await until(lambda: not watchdog.recovery.journal.open_incidents(), timeout=30)
            done = actions(watchdog)
            [incident] = watchdog.recovery.journal.history()
            assert watchdog.conversations.activity == {}  # nothing but the heartbeat was ever there
        restarted = docker_engine.containers.get(name).attrs["State"]["StartedAt"]
    assert found_after <= 2 * INTERVAL
    assert restarted != started_before
    assert [kind for kind, _ in done] == ["restart_container"]
    assert incident["key"] == "service:evolution"
    assert incident["summary"].startswith("the heartbeat never reached the bot instance")


async def _answers(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                (await client.get(url + "/")).raise_for_status()
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"{url} never answered"
                await asyncio.sleep(0.2)


def test_emulators_deliver_by_number_through_the_bot_and_a_dead_processor_drops_it_silently(
    receiver: Receiver,
) -> None:
    """The emulators' small WhatsApp network: sendText to another instance's number arrives there (on a
    peer emulator too), its bot answers, the answer comes back; a dead processor loses it without a word."""
    prober_port, bot_port = free_port(), free_port()
    prober_url, bot_url = f"http://127.0.0.1:{prober_port}", f"http://127.0.0.1:{bot_port}"
    log = io.StringIO()
    with ExitStack() as stack:
        dify = dify_server(stack)
        common: dict[str, Any] = {"webhook_url": receiver.url, "time_scale": 0.1, "debounce_seconds": 0}
        prober = prober_options(bot_url, api_key="k", **common)
        bot = bot_options(prober_url, dify.url, api_key="k", **common)
        stack.enter_context(ThreadedServer(build_evolution(prober)[1], port=prober_port))
        bot_sim, bot_app = build_evolution(bot, log=SimLog(log))
        stack.enter_context(ThreadedServer(bot_app, port=bot_port))
        rows = httpx.get(prober_url + "/instance/fetchInstances", headers={"apikey": "k"}).json()
        assert [(r["name"], r["ownerJid"]) for r in rows] == [("sonda", f"{PROBER}@s.whatsapp.net")]

        def say(text: str) -> None:
            body = {"number": BOT, "text": text}
            httpx.post(
                prober_url + "/message/sendText/sonda", json=body, headers={"apikey": "k"}
            ).raise_for_status()

        say("oi")
        posts = receiver.wait_for(lambda p: any(_is(b, "sonda", "messages.upsert") for _, _, b in p))
        seen = [_message(b) for _, _, b in posts if b["event"] in ("messages.upsert", "send.message")]
        assert sorted(seen) == sorted(  # two emulators post their webhooks side by side: any order
            [
                ("sonda", "send.message", f"{BOT}@s.whatsapp.net", True),
                ("loja", "messages.upsert", f"{PROBER}@s.whatsapp.net", False),  # through loja's bot:
                ("loja", "send.message", f"{PROBER}@s.whatsapp.net", True),
                ("sonda", "messages.upsert", f"{BOT}@s.whatsapp.net", False),  # its answer is back
            ]
        )
        nobody = {"number": "5500000000000", "remoteJid": ANA}
        assert httpx.post(bot_url + "/_sim/inbound", json=nobody).status_code == 404
        before, logged = len(receiver.posts), log.getvalue()
        httpx.post(bot_url + "/_sim/faults", json={"name": "processor_dead", "params": {"instance": "loja"}})
        say("oi de novo")
        receiver.wait_for(lambda p: len(p) > before)  # the prober's own send.message
        time.sleep(1.0)
        later = [_message(b) for _, _, b in receiver.posts[before:] if _event(b)[1] != "connection.update"]
        assert later == [("sonda", "send.message", f"{BOT}@s.whatsapp.net", True)]
        assert log.getvalue() == logged  # upstream prints nothing when its processor is dead
        assert bot_sim.dify_calls == 1


def _is(body: Any, instance: str, event: str) -> bool:
    return isinstance(body, dict) and (body.get("instance"), body.get("event")) == (instance, event)


def _event(body: Any) -> tuple[str, str]:
    return (body.get("instance"), body.get("event"))


def _message(body: Any) -> tuple[str, str, str, bool]:
    key = body["data"]["key"]
    return (body["instance"], body["event"], key["remoteJid"], key["fromMe"])
