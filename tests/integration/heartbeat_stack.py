"""The end-to-end heartbeat's test stacks and readings, for tests/integration/test_heartbeat.py and the status
page's (tests/e2e/test_statuspage_heartbeat.py): the bot instance `loja` and the prober `sonda`, on one
emulator or on two that name each other as peers (sim/network.py).

Intervals: the user floor of WATCHDOG_E2E_INTERVAL_SECONDS (60 s) guards a real number from being flagged;
these runs have no real number, so they replace the parsed field on the frozen Settings (`fast()`), which
no environment variable can do. Every other setting goes through the environment as a user's would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.integration.stack import DIFY_KEY, Stack, running_stack
from watchdog.app import Watchdog
from watchdog.config import Settings
from watchdog.metrics import sample_total
from watchdog.serving import ThreadedServer, free_port
from watchdog.sim.runner import DifyOptions, EvolutionOptions, build_dify, build_evolution

PROBER, BOT = "5511911110000", "5511922220000"
INTERVAL = 6.0  # seconds between heartbeats here; each try waits min(stall 2 s, INTERVAL / 3)


def fast(settings: Settings, interval: float = INTERVAL) -> Settings:
    """Below the user floor, for tests only (see the module docstring)."""
    return replace(settings, e2e_interval_seconds=interval)


def sample(watchdog: Watchdog, name: str, **labels: str) -> float:
    return sample_total(watchdog.registry, name, **labels)


def beats_ok(watchdog: Watchdog, instance: str = "loja") -> float:
    return sample(watchdog, "watchdog_e2e_seconds_count", instance=instance, leg="round_trip")


def one_server_stack(listen: int, **options: Any) -> AbstractContextManager[Stack]:
    """Bot instance `loja` and the prober `sonda` (no bot) on one emulator, its global webhook at us."""
    return running_stack(
        EvolutionOptions(
            instances=("loja",),
            bare_instances=("sonda",),
            numbers=(("loja", BOT), ("sonda", PROBER)),
            debounce_seconds=0,
            webhook_url=f"http://127.0.0.1:{listen}/webhook/evolution",
            **options,
        )
    )


def heartbeat_settings(stack: Stack, listen: int, to_number: str, **env: str) -> Settings:
    """The one-server stack's settings: the watchdog on `listen`, `sonda` writing to WATCHDOG_E2E_TO_NUMBER
    `to_number`, stall 2 s."""
    return stack.settings(
        WATCHDOG_LISTEN=f"127.0.0.1:{listen}",
        WATCHDOG_STALL_SECONDS="2",
        WATCHDOG_E2E_FROM_INSTANCE="sonda",
        WATCHDOG_E2E_TO_NUMBER=to_number,
        **env,
    )


def prober_options(bot_url: str, **options: Any) -> EvolutionOptions:
    """An emulator with the prober `sonda` alone (no bot), the bot's emulator its peer."""
    return EvolutionOptions(
        instances=(), bare_instances=("sonda",), numbers=(("sonda", PROBER),), peers=(bot_url,), **options
    )


def bot_options(prober_url: str, dify_url: str, **options: Any) -> EvolutionOptions:
    """An emulator with the bot instance `loja` on the Dify at `dify_url`, the prober's emulator its peer."""
    return EvolutionOptions(
        instances=("loja",),
        numbers=(("loja", BOT),),
        peers=(prober_url,),
        dify_url=dify_url + "/v1",
        dify_api_key=DIFY_KEY,
        **options,
    )


def dify_server(stack: ExitStack) -> ThreadedServer:
    """An emulated Dify on loopback that takes the tests' key, closed with `stack`."""
    return stack.enter_context(ThreadedServer(build_dify(DifyOptions(api_keys=(DIFY_KEY,)))[1]))


@contextmanager
def two_emulators(listen: int) -> Iterator[tuple[str, str]]:
    """The prober on one emulator process, the bot on another; each names the other as its peer."""
    hook = f"http://127.0.0.1:{listen}/webhook/evolution"
    prober_port, bot_port = free_port(), free_port()
    prober_url, bot_url = f"http://127.0.0.1:{prober_port}", f"http://127.0.0.1:{bot_port}"
    with ExitStack() as stack:
        dify = dify_server(stack)
        common: dict[str, Any] = {
            "webhook_url": hook,
            "time_scale": 0.1,
            "reconnect_seconds": 0.05,
            "debounce_seconds": 0,
        }
        prober = prober_options(bot_url, api_key="prober-key", **common)
        bot = bot_options(prober_url, dify.url, api_key="bot-key", **common)
        stack.enter_context(ThreadedServer(build_evolution(prober)[1], port=prober_port))
        stack.enter_context(ThreadedServer(build_evolution(bot)[1], port=bot_port))
        yield prober_url, bot_url


def two_server_env(listen: int, prober_url: str, bot_url: str, state: Path) -> dict[str, str]:
    """A watchdog's environment for the bot on one Evolution and the prober on another."""
    return {
        "EVOLUTION_URL": bot_url,
        "EVOLUTION_API_KEY": "bot-key",
        "EVOLUTION_INSTANCES": "loja",
        "WATCHDOG_E2E_FROM_INSTANCE": "sonda",
        "WATCHDOG_E2E_FROM_URL": prober_url,
        "WATCHDOG_E2E_FROM_API_KEY": "prober-key",
        "WATCHDOG_E2E_TO_NUMBER": BOT,
        "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
        "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
        "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "1",
        "WATCHDOG_STALL_SECONDS": "2",
        "WATCHDOG_LISTEN": f"127.0.0.1:{listen}",
        "WATCHDOG_STATE_PATH": str(state / "journal.db"),
    }
