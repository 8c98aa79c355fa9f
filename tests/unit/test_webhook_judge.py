"""Webhook setup help: is the instance's webhook ours, enabled, with the events we need?"""

from __future__ import annotations

from watchdog.clients.evolution import InstanceWebhook
from watchdog.probes.webhook import NEEDED_EVENTS, judge

OURS = "http://watchdog:8787/webhook/evolution"


def hook(url: str = OURS + "?token=SECRET", *, enabled: bool = True, events: tuple[str, ...] = NEEDED_EVENTS):  # type: ignore[no-untyped-def]
    return InstanceWebhook(url=url, enabled=enabled, by_events=False, events=events)


def test_good_webhook_passes_and_never_shows_the_token() -> None:
    ok, detail, data = judge(hook(), OURS)
    assert ok and "SECRET" not in detail + str(data)


def test_problems_with_an_expected_url() -> None:
    assert judge(None, OURS)[2]["problem"] == "missing"
    assert judge(hook("http://n8n:5678/hook"), OURS)[2]["problem"] == "elsewhere"
    assert judge(hook(enabled=False), OURS)[2]["problem"] == "disabled"
    ok, detail, data = judge(hook(events=("MESSAGES_UPSERT",)), OURS)
    assert not ok and data["problem"] == "events" and "SEND_MESSAGE, CONNECTION_UPDATE" in detail


def test_without_an_expected_url_only_a_broken_watchdog_hook_is_a_problem() -> None:
    assert judge(None, "")[0] is True
    assert judge(hook("http://n8n:5678/hook"), "")[0] is True
    assert judge(hook(events=()), "")[2]["problem"] == "events"
