"""Assemble an emulator from options: used by `evo-watchdog sim`, the demo and the tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette

from watchdog.sim.dify import DifySim, create_dify_app
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.evolution_app import create_evolution_app
from watchdog.sim.logfmt import SimLog
from watchdog.sim.scenario import ContactTraffic
from watchdog.sim.webhooks import WebhookConfig, WebhookSender


@dataclass
class EvolutionOptions:
    api_key: str = "evolution-sim-key"
    instances: tuple[str, ...] = ("loja",)
    server_url: str = "http://127.0.0.1:8080"
    dify_url: str = ""  # Dify service API base including /v1; empty = no bot
    dify_api_key: str = "app-sim"
    bot_type: str = "chatBot"
    debounce_seconds: float = 1.0
    webhook_url: str = ""  # global webhook; empty = none
    webhook_by_events: bool = False
    webhook_retry_seconds: float = 5.0
    reconnect_seconds: float = 0.5
    faults: tuple[str, ...] = ()
    state_file: Path | None = None
    traffic_interval: float = 0.0  # 0 = no simulated customers
    contacts: int = 5
    media_ratio: float = 0.2
    version: str = "2.3.6"
    log_color: bool = False
    # Multiplies every wait upstream makes (reply delays, debounce, Baileys retries); 1.0 = upstream's timing.
    time_scale: float = 1.0
    # Paired, with no bot and no simulated customers: a heartbeat prober (sim/network.py).
    bare_instances: tuple[str, ...] = ()
    numbers: tuple[tuple[str, str], ...] = ()  # instance -> its WhatsApp number (default: 55119 and a count)
    peers: tuple[str, ...] = ()  # other emulators' URLs: a number not found here is delivered there
    integrations_off: tuple[str, ...] = ()  # their *_ENABLED false: `<Label> is disabled` on each route


# A bot as Evolution's manager creates it: every column filled (the `fetchSettings` defaults, with a
# Portuguese finish keyword), and a trigger on every message.
MANAGER_BOT: dict[str, object] = {
    "expire": 300,
    "keyword_finish": "#sair",
    "delay_message": 1000,
    "unknown_message": "Sorry, I dont understand",
    "listening_from_me": True,
    "stop_bot_from_me": True,
    "keep_open": False,
    "ignore_jids": [],
    "split_messages": False,
    "time_per_char": 0,
}


def build_evolution(opts: EvolutionOptions, *, log: SimLog | None = None) -> tuple[EvolutionSim, Starlette]:
    """The emulator and its ASGI app; the app's lifespan starts customers and closes clients."""
    log = log or SimLog(version=opts.version, color=opts.log_color)
    http = httpx.AsyncClient(trust_env=False)
    hook = WebhookConfig(url=opts.webhook_url, by_events=opts.webhook_by_events) if opts.webhook_url else None
    sender = WebhookSender(
        http, log, server_url=opts.server_url, global_hook=hook, retry_base_seconds=opts.webhook_retry_seconds
    )
    sim = EvolutionSim(
        api_key=opts.api_key,
        http=http,
        webhooks=sender,
        log=log,
        version=opts.version,
        whatsapp_web_version="" if opts.version.startswith("2.2") else "2.3000.1023204200",
        state_file=opts.state_file,
        reconnect_seconds=opts.reconnect_seconds,
        time_scale=opts.time_scale,
        peers=opts.peers,
    )
    sim.disabled_integrations.update(opts.integrations_off)
    numbers = dict(opts.numbers)
    for name in opts.bare_instances:
        if name not in sim.instances:
            sim.add_instance(name, number=numbers.get(name))
    for name in opts.instances:
        if name not in sim.instances:
            sim.add_instance(name, number=numbers.get(name))
            if opts.dify_url:
                sim.add_dify_bot(
                    name,
                    api_url=opts.dify_url,
                    api_key=opts.dify_api_key,
                    bot_type=opts.bot_type,
                    debounce_time=opts.debounce_seconds,
                    **MANAGER_BOT,
                )
    for spec in opts.faults:
        sim.apply_fault(sim.faults.set_spec(spec))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        traffic = None
        sim.startup_logs(urlsplit(opts.server_url).port or 8080)
        if opts.traffic_interval > 0:
            traffic = ContactTraffic(
                sim,
                instances=[name for name in sim.instances if name not in opts.bare_instances],
                contacts=opts.contacts,
                interval=opts.traffic_interval,
                media_ratio=opts.media_ratio,
            )
            traffic.start()
        try:
            yield
        finally:
            if traffic is not None:
                await traffic.stop()
            await sim.aclose()
            await sender.aclose()
            await http.aclose()

    return sim, create_evolution_app(sim, lifespan=lifespan)


@dataclass
class DifyOptions:
    api_keys: tuple[str, ...] = ("app-sim",)
    version: str = "1.12.1"  # the Dify the contract tests run against
    mode: str = "chat"
    faults: tuple[str, ...] = ()
    ping_seconds: float = 10.0
    state_file: Path | None = None


def build_dify(opts: DifyOptions, *, log: SimLog | None = None) -> tuple[DifySim, Starlette]:
    sim = DifySim(
        api_keys=opts.api_keys,
        version=opts.version,
        mode=opts.mode,
        log=log or SimLog(),
        ping_seconds=opts.ping_seconds,
        state_file=opts.state_file,
    )
    sim.load()
    for spec in opts.faults:
        sim.faults.set_spec(spec)
    return sim, create_dify_app(sim)
