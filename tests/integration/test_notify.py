"""Notifications through apprise's JSON scheme to a real local HTTP receiver."""

from __future__ import annotations

import pytest

from tests.conftest import Receiver
from tests.integration.stack import running_stack
from tests.integration.test_recovery import AUTO, actions, daemon_for, until
from watchdog.clock import FakeClock
from watchdog.notify import Notifier
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
