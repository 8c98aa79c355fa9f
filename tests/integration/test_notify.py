"""Notifications through apprise's JSON scheme to a real local HTTP receiver, and pages that reach
nobody (no WATCHDOG_NOTIFY_URLS): journaled and counted `undelivered`, never `ok`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import Receiver
from tests.integration.stack import running_stack
from tests.integration.test_recovery import AUTO, actions, daemon_for, until
from watchdog.clock import FakeClock
from watchdog.config import Settings
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity
from watchdog.notify import Notifier
from watchdog.recovery.engine import RecoveryEngine, build_engine
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration


async def test_delivered_deduplicated_and_a_dead_target_never_raises(
    receiver: Receiver, clock: FakeClock
) -> None:
    url = receiver.url.replace("http://", "json://") + "/alerts"
    notifier = Notifier([url], clock)
    assert await notifier.send("instance:loja", "page", "PAGE: instance:loja", "restart budget spent")
    assert await notifier.send("instance:loja", "page", "PAGE: instance:loja", "again")  # deduplicated
    clock.advance(601)
    assert await notifier.send("instance:loja", "page", "PAGE: instance:loja", "still down")
    posts = receiver.wait_for(lambda posts: len(posts) >= 2)
    assert [p[0] for p in posts] == ["/alerts", "/alerts"]
    assert posts[0][2]["title"] == "PAGE: instance:loja" and posts[0][2]["message"] == "restart budget spent"
    dead = Notifier(["json://127.0.0.1:9/alerts"], clock)
    assert await dead.send("x", "page", "t", "b") is False and dead.failed == 1


async def test_an_l4_page_reaches_on_call(receiver: Receiver) -> None:
    url = receiver.url.replace("http://", "json://") + "/oncall"
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        settings = stack.settings(**AUTO, WATCHDOG_NOTIFY_URLS=url)
        async with daemon_for(settings) as watchdog:
            stack.fault("evolution", "instance_unloaded", instance="loja")
            await until(lambda: ("page", "ok") in actions(watchdog))
    titles = [body["title"] for _, _, body in receiver.wait_for(lambda posts: len(posts) >= 3)]
    assert titles[0] == "Incident: instance:loja"
    assert "L2 restart_instance on instance:loja: failed" in titles
    assert "PAGE: instance:loja" in titles


# Only a person can fix a logout (a QR scan): the ladder pages at once, whatever the confirmation rules.
LOGGED_OUT = [Finding("logged_out", "evolution:loja", Severity.CRITICAL, "logged out of WhatsApp")]


def engine_for(tmp_path: Path, clock: FakeClock, http: httpx.AsyncClient, **env: str) -> RecoveryEngine:
    settings = Settings.from_env(
        {
            "EVOLUTION_INSTANCES": "loja",
            **AUTO,
            "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
            **env,
        }
    )
    engine = build_engine(settings, clock=clock, http=http, metrics=Metrics(CollectorRegistry()))
    engine.resume()
    return engine


def page_count(engine: RecoveryEngine, result: str) -> float:
    labels = {"action": "page", "target": "on-call", "result": result}
    return engine.metrics.registry.get_sample_value("watchdog_recovery_actions_total", labels) or 0.0


async def test_a_page_with_no_notify_url_is_undelivered_counted_shown_and_not_sent_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Expected: journaled `undelivered` with the fix in its detail (not `ok`), counted with
    result="undelivered", shown in the recovery view, and not planned again while nothing can carry it
    (no loop of pages nobody gets), however long the incident stays open."""
    async with httpx.AsyncClient() as http:
        engine = engine_for(tmp_path, clock, http)
        assert [a.kind for a in await engine.tick(LOGGED_OUT)] == ["page"]
        for _ in range(10):
            clock.advance(300)  # the longest backoff, ten times over
            assert await engine.tick(LOGGED_OUT) == []
        incident = engine.journal.history()[0]
        pages = engine.view()["pages"]
        engine.journal.close()
    assert [(a["kind"], a["result"], a["detail"]) for a in incident["actions"]] == [
        ("page", "undelivered", "reached nobody: set WATCHDOG_NOTIFY_URLS")
    ]
    assert incident["page"] == "undelivered" and incident["circuit_open"]
    assert page_count(engine, "undelivered") == 1 and page_count(engine, "ok") == 0
    assert pages == {
        "notify": "set WATCHDOG_NOTIFY_URLS",
        "undelivered": 1,
        "failed": 0,
        "warning": "1 page reached nobody: set WATCHDOG_NOTIFY_URLS",
    }


async def test_notify_urls_apprise_cannot_use_are_no_pager_either(tmp_path: Path, clock: FakeClock) -> None:
    async with httpx.AsyncClient() as http:
        engine = engine_for(tmp_path, clock, http, WATCHDOG_NOTIFY_URLS="nosuchscheme://x")
        await engine.tick(LOGGED_OUT)
        detail = engine.journal.history()[0]["actions"][0]["detail"]
        engine.journal.close()
    assert page_count(engine, "undelivered") == 1
    assert detail == "reached nobody: fix WATCHDOG_NOTIFY_URLS: apprise understands none of its 1 entries"


async def test_a_page_that_reached_nobody_is_sent_once_a_restart_brings_a_notify_url(
    tmp_path: Path, clock: FakeClock, receiver: Receiver
) -> None:
    """Expected: the operator reads the banner, sets WATCHDOG_NOTIFY_URLS and restarts the watchdog; the
    incident is still open, so on-call gets its page after the backoff, and the banner clears."""
    async with httpx.AsyncClient() as http:
        before = engine_for(tmp_path, clock, http)
        await before.tick(LOGGED_OUT)
        before.journal.close()
        url = receiver.url.replace("http://", "json://") + "/oncall"
        after = engine_for(tmp_path, clock, http, WATCHDOG_NOTIFY_URLS=url)
        assert await after.tick(LOGGED_OUT) == []  # the backoff holds across the restart
        clock.advance(10)
        assert [a.kind for a in await after.tick(LOGGED_OUT)] == ["page"]
        results = [a["result"] for a in after.journal.history()[0]["actions"]]
        pages = after.view()["pages"]
        after.journal.close()
    posts = receiver.wait_for(lambda posts: any(b["title"].startswith("PAGE") for _, _, b in posts))
    assert [b["title"] for _, _, b in posts if b["title"].startswith("PAGE")] == [
        "PAGE: human:logged_out:evolution:loja"
    ]
    assert results == ["undelivered", "ok"]
    assert pages == {"notify": "ok", "undelivered": 0, "failed": 0, "warning": ""}
