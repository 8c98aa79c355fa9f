"""The Evolution emulator with bots of the other integrations (no Dify bot) and their backends
(watchdog/sim/bot_backends.py), its global webhook pointed at a watchdog's address, for integration tests."""

from __future__ import annotations

import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from watchdog.config import Settings
from watchdog.serving import ThreadedServer, free_port
from watchdog.sim.bot_backends import BackendSim, create_backends_app
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import EvolutionOptions, build_evolution

KEY = "bots-evolution-key"
# The backend each integration calls (the `backend` parameter of the backends' faults).
BACKEND_OF = {"typebot": "typebot", "openai": "openai"}  # the rest are webhook bots: "webhook"


@dataclass
class BotStack:
    evolution: EvolutionSim
    backends: BackendSim
    evolution_url: str
    backends_url: str
    listen: int  # the watchdog's port: the emulator's global webhook posts there
    http: httpx.Client
    log: io.StringIO
    state_dir: Path
    replies: Counter[str] = field(default_factory=Counter)  # remoteJid -> `send.message` events
    texts: list[tuple[str, str]] = field(default_factory=list)  # (remoteJid, text) of each reply

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env(
            {
                "EVOLUTION_URL": self.evolution_url,
                "EVOLUTION_API_KEY": KEY,
                "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
                "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
                "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "0.5",
                "WATCHDOG_STALL_SECONDS": "1",
                "WATCHDOG_LISTEN": f"127.0.0.1:{self.listen}",
                "WATCHDOG_STATE_PATH": str(self.state_dir / "journal.db"),
                **overrides,
            }
        )

    def api(self, method: str, path: str, **body: Any) -> Any:
        answer = self.http.request(
            method, self.evolution_url + path, headers={"apikey": KEY}, json=body or None
        )
        assert answer.status_code < 300, answer.text
        return answer.json()

    def add_bot(self, integration: str, instance: str = "loja", **options: Any) -> dict[str, Any]:
        """A bot created through the emulator's API, as a person does in the manager."""
        body = {
            "enabled": True,
            "triggerType": "all",
            "keywordFinish": "#sair",
            **bot_body(self, integration),
        }
        body.update(options)
        created: dict[str, Any] = self.api("POST", f"/{integration}/create/{instance}", **body)
        return created

    def inbound(self, jid: str, text: str = "Oi", *, instance: str = "loja") -> str:
        body = {"instance": instance, "remoteJid": jid, "kind": "text", "text": text, "pushName": "Ana"}
        answer = self.http.post(f"{self.evolution_url}/_sim/inbound", json=body)
        answer.raise_for_status()
        return str(answer.json()["outcome"])

    def fault(self, name: str, **params: Any) -> None:
        body = {"name": name, "params": params}
        self.http.post(f"{self.backends_url}/_sim/faults", json=body).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete(f"{self.backends_url}/_sim/faults").raise_for_status()

    def session(self, jid: str, instance: str = "loja") -> Any:
        return self.evolution.instances[instance].sessions.get(jid)


def bot_body(stack: BotStack, integration: str) -> dict[str, Any]:
    """What each integration's create needs, pointed at the backends (OpenAI gets credentials first)."""
    base = stack.backends_url
    if integration == "typebot":
        return {"url": base, "typebot": "atendimento"}
    if integration == "openai":
        creds = stack.api("POST", "/openai/creds/loja", name="principal", apiKey="sk-test-0001")
        return {
            "openaiCredsId": creds["id"],
            "botType": "chatCompletion",
            "model": "gpt-4o-mini",
            "maxTokens": 300,
        }
    if integration == "n8n":
        return {"webhookUrl": f"{base}/webhook/n8n/atendimento"}
    if integration == "evoai":
        return {"agentUrl": f"{base}/webhook/evoai/atendimento", "apiKey": "evoai-key"}
    return {"apiUrl": f"{base}/webhook/{integration}/atendimento", "apiKey": f"{integration}-key"}


@contextmanager
def bot_stack(instances: tuple[str, ...] = ("loja",)) -> Iterator[BotStack]:
    log = io.StringIO()
    listen = free_port()
    with ExitStack() as stack:
        backends = BackendSim()
        backends_server = stack.enter_context(ThreadedServer(create_backends_app(backends)))
        opts = EvolutionOptions(
            api_key=KEY,
            instances=instances,
            webhook_url=f"http://127.0.0.1:{listen}/webhook/evolution",
            webhook_retry_seconds=0.2,
            reconnect_seconds=0.05,
            time_scale=0.1,  # upstream's reply delays (>= 2 s) at the pace of the settings above
        )
        sim, app = build_evolution(opts, log=SimLog(log))
        sim.bot_services["openai"].base_url = backends_server.url + "/v1"  # type: ignore[attr-defined]
        replies: Counter[str] = Counter()
        texts: list[tuple[str, str]] = []
        emit = sim.emit

        def counted(inst: Any, event: str, data: dict[str, Any] | None) -> None:
            if event == "send.message" and data is not None:
                replies[data["key"]["remoteJid"]] += 1
                texts.append((data["key"]["remoteJid"], data["message"]["conversation"]))
            emit(inst, event, data)

        sim.emit = counted  # type: ignore[method-assign]
        server = stack.enter_context(ThreadedServer(app))
        http = stack.enter_context(httpx.Client(timeout=10))
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evo-bots-")))
        urls = (server.url, backends_server.url)
        yield BotStack(sim, backends, *urls, listen, http, log, state, replies, texts)
