"""Simulated customers: contacts that write to the bot now and then, in text and media."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.messages import MEDIA_KINDS

TEXTS = (
    "Oi, tudo bem?",
    "Qual o horário de funcionamento?",
    "Quero saber o status do meu pedido",
    "Vocês entregam no centro?",
    "Obrigado!",
    "Qual o preço do frete?",
)


NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi")


def contact_jid(index: int) -> str:
    return f"55119876{index:05d}@s.whatsapp.net"


class ContactTraffic:
    """Every `interval` seconds one contact of one instance sends a message; some are media."""

    def __init__(
        self,
        sim: EvolutionSim,
        *,
        instances: Sequence[str],
        contacts: int = 5,
        interval: float = 3.0,
        media_ratio: float = 0.2,
        seed: int = 7,
    ) -> None:
        if contacts < 1 or interval <= 0 or not 0 <= media_ratio <= 1:
            raise ValueError("need contacts >= 1, interval > 0 and 0 <= media_ratio <= 1")
        self.sim = sim
        self.instances = list(instances)
        self.contacts = contacts
        self.interval = interval
        self.media_ratio = media_ratio
        self.random = random.Random(seed)
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def next_message(self) -> tuple[str, str, str, str, str]:
        """(instance, remoteJid, kind, text, pushName) of the next message."""
        instance = self.random.choice(self.instances)
        index = self.random.randrange(self.contacts)
        kind = self.random.choice(MEDIA_KINDS[:2]) if self.random.random() < self.media_ratio else "text"
        return instance, contact_jid(index), kind, self.random.choice(TEXTS), NAMES[index % len(NAMES)]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.sim.customers_writing:
                continue
            instance, jid, kind, text, name = self.next_message()
            self.sim.receive(instance, jid, kind=kind, text=text, push_name=name)
            self.sent += 1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
