"""Does each instance's webhook reach the watchdog with the events it needs? (Setup help for `check`.)"""

from __future__ import annotations

from urllib.parse import urlsplit

from watchdog.clients.evolution import EvolutionClient, InstanceWebhook
from watchdog.model import ProbeResult, instance_target
from watchdog.probes.base import Observation, ProbeRunner

NEEDED_EVENTS = ("MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE")
WEBHOOK_PATH = "/webhook/evolution"


def shown(url: str) -> str:
    """The URL without its query (a ?token= must never be printed)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def judge(hook: InstanceWebhook | None, expected_url: str) -> Observation:
    """(ok, detail, data) for one instance's webhook; `expected_url` is WATCHDOG_WEBHOOK_URL or ""."""
    if hook is None:
        if expected_url:
            return (
                False,
                f"no instance webhook: set one to {shown(expected_url)} (see README)",
                {"problem": "missing"},
            )
        return True, "no instance webhook (the global webhook may point at the watchdog)", {"problem": ""}
    target = shown(hook.url)
    ours = urlsplit(hook.url).path.rstrip("/").endswith(WEBHOOK_PATH)
    if expected_url:
        ours = target.rstrip("/") == shown(expected_url).rstrip("/")
    data = {"url": target, "enabled": hook.enabled, "by_events": hook.by_events, "events": list(hook.events)}
    if not ours:
        if expected_url:
            return (
                False,
                f"webhook points at {target}, not {shown(expected_url)}",
                {**data, "problem": "elsewhere"},
            )
        return True, f"webhook points at {target}", {**data, "problem": ""}
    missing = [e for e in NEEDED_EVENTS if e not in hook.events]
    if not hook.enabled:
        return False, f"webhook to {target} is disabled", {**data, "problem": "disabled"}
    if missing:
        return False, f"webhook to {target} lacks {', '.join(missing)}", {**data, "problem": "events"}
    return True, f"webhook to {target} with {', '.join(NEEDED_EVENTS)}", {**data, "problem": ""}


async def webhook_probe(
    client: EvolutionClient, runner: ProbeRunner, instance: str, expected_url: str
) -> ProbeResult:
    async def call() -> Observation:
        return judge(await client.webhook(instance), expected_url)

    return await runner.run(instance_target(instance), "webhook", call)
