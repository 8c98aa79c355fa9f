"""The incident, fault by fault: what the demo injects and what the watchdog should find, and the demo's
one time factor.

Repairs are not here: the watchdog's recovery engine does them (L1 session reset, L2 instance
restart, L3 process restart through the command backend). Every duration of the demo is a shipped default
(or a wait stated at the defaults here) times FACTOR: the settings (watchdog/timescale.py), upstream's own
waits in the emulators (`--time-scale`), the customers' pace and the demo's patience alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from watchdog.demo.emulators import EVOLUTION_KEY, INSTANCES
from watchdog.sim.scenario import contact_jid

FACTOR = 0.1  # 15 s probes become 1.5 s; under 1/15 the 1 s floor of the probe interval is crossed
CUSTOMER_PACE = 2.0  # seconds between customers' messages at the defaults (as benchmarks/trials.py)
WARMUP = 30.0  # healthy turns before the first fault: two probe cycles at the defaults


def scaled(seconds_at_defaults: float) -> float:
    """A wait stated at the shipped defaults, at the demo's pace."""
    return seconds_at_defaults * FACTOR


# One customer per phase: the same contact failing again right after a repair is, by design, paged.
FORGOTTEN, WEDGED = contact_jid(42), contact_jid(43)
WEBHOOK_EVENTS = ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"]


class Controls:
    """The demo's hands on the emulators: fault switches and a customer who writes."""

    def __init__(
        self, http: httpx.AsyncClient, evolution_url: str, dify_url: str, *, gap: float = 0.3
    ) -> None:
        self.http = http
        self.evolution = evolution_url
        self.dify = dify_url
        self.gap = gap  # seconds between one customer's messages (the demo passes its pace; trials none)

    async def fault(self, base: str, name: str, **params: object) -> None:
        response = await self.http.post(f"{base}/_sim/faults", json={"name": name, "params": params})
        response.raise_for_status()

    async def clear(self, base: str, name: str) -> None:
        (await self.http.delete(f"{base}/_sim/faults/{name}")).raise_for_status()

    async def customer_says(self, who: str, text: str, kind: str = "text") -> None:
        body = {
            "instance": INSTANCES[0],
            "remoteJid": who,
            "kind": kind,
            "text": text,
            "pushName": "Ana",
        }
        (await self.http.post(f"{self.evolution}/_sim/inbound", json=body)).raise_for_status()
        await asyncio.sleep(self.gap)

    async def customers_writing(self, writing: bool) -> None:
        """The simulated customers go quiet (a night) or write again; a restarted Evolution's write again."""
        body = {"writing": writing}
        (await self.http.post(f"{self.evolution}/_sim/customers", json=body)).raise_for_status()

    async def set_webhooks(self, url: str, instances: Sequence[str] = INSTANCES) -> None:
        """What a user does once: point each instance's webhook at the watchdog."""
        for instance in instances:
            hook = {"enabled": True, "url": url, "byEvents": False, "events": WEBHOOK_EVENTS}
            response = await self.http.post(
                f"{self.evolution}/webhook/set/{instance}",
                json={"webhook": hook},
                headers={"apikey": EVOLUTION_KEY},
            )
            response.raise_for_status()


@dataclass(frozen=True)
class Phase:
    title: str
    expected: tuple[str, ...]  # finding kinds that count as detecting it (the first is the usual one)
    inject: Callable[[Controls], Awaitable[None]]
    repaired_at: int  # the ladder level whose verified action should end it
    repaired_on: str  # its target ("service:dify"; "contact:" for any contact): no more force than that
    patience: float = 150.0  # seconds to detect at the shipped defaults (ten probe cycles): see scaled()


async def _socket_closed(c: Controls) -> None:
    await c.fault(c.evolution, "socket_closed", instance=INSTANCES[0])


async def _forgetful_dify(c: Controls) -> None:
    """Upstream's "stops after a few messages": Dify forgets; sessions keep the dead conversation_id."""
    await c.fault(c.dify, "forget_after", messages=1)
    for text in ("Oi", "Ainda estão aí?", "Alô?"):
        await c.customer_says(FORGOTTEN, text)
    await c.clear(c.dify, "forget_after")  # the forgetting happened; the stale sessions remain


async def _image_wedge(c: Controls) -> None:
    await c.fault(c.evolution, "media_wedge", remoteJid=WEDGED)
    await c.customer_says(WEDGED, "olha a foto", kind="image")
    await c.clear(c.evolution, "media_wedge")  # the session stays wedged until someone deletes it


async def _dify_hangs(c: Controls) -> None:
    await c.fault(c.dify, "hang", scope="all")


async def _evolution_500(c: Controls) -> None:
    await c.fault(c.evolution, "api_500")


async def _processor_dies_at_night(c: Controls) -> None:
    await c.customers_writing(False)
    await c.fault(c.evolution, "processor_dead", instance=INSTANCES[0])


SOCKET_CLOSES = Phase(
    "instance socket closes", ("instance_disconnected",), _socket_closed, 2, f"instance:{INSTANCES[0]}"
)
EVOLUTION_500 = Phase("Evolution answers 500", ("evolution_down",), _evolution_500, 3, "service:evolution")
DIFY_FORGETS = Phase("Dify forgets conversations", ("stale_conversation",), _forgetful_dify, 1, "contact:")
IMAGE_WEDGE = Phase("an image wedges the session", ("session_wedged",), _image_wedge, 1, "contact:")
DIFY_HANGS = Phase("Dify hangs", ("dify_down",), _dify_hangs, 3, "service:dify")
# Silent, as upstream (nothing in the log), and at night: no customer writes, so no customer's silence can
# tell; only the heartbeat's message, never received while the instance says `open`. An instance restart
# cannot revive a dead processor: the repair is the process restart (and the restarted emulator's customers
# write again: morning). Patience: two heartbeat intervals (300 s each at the defaults) and a re-sent try.
PROCESSOR_DIES = Phase(
    "processor dies, quiet night",
    ("e2e_not_received",),
    _processor_dies_at_night,
    3,
    "service:evolution",
    720.0,
)
# Two Evolution restarts back to back would be "the same fault back within its cooldown" (a page):
# other faults play between them.
PHASES = (SOCKET_CLOSES, EVOLUTION_500, DIFY_FORGETS, IMAGE_WEDGE, DIFY_HANGS, PROCESSOR_DIES)


@dataclass(frozen=True)
class Pace:
    """Which faults the demo plays: all of them, or (`--fast`) one per repair path (contact reset,
    instance restart, Dify and Evolution restarts). Not how fast: that is FACTOR, for both."""

    phases: tuple[Phase, ...]


NORMAL = Pace(PHASES)
FAST = Pace((SOCKET_CLOSES, DIFY_FORGETS, DIFY_HANGS, PROCESSOR_DIES))
