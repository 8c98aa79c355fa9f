"""The status page's heartbeat section in Debian's headless Chromium: each bot's last legs, from a real
daemon whose prober writes to the emulated bot (tests/integration/heartbeat_stack.py has the stack)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.e2e.test_statuspage import snapshot
from tests.infra import free_port, require_binary
from tests.integration.heartbeat_stack import (
    BOT,
    PROBER,
    beats_ok,
    fast,
    heartbeat_settings,
    one_server_stack,
)
from tests.integration.test_recovery import daemon_for, until

pytestmark = pytest.mark.e2e


async def test_the_status_page_shows_each_leg_of_the_last_heartbeat(tmp_path: Path) -> None:
    browser = require_binary("chromium", "chromium")
    listen = free_port()
    with one_server_stack(listen) as stack:
        settings = heartbeat_settings(stack, listen, BOT, WATCHDOG_E2E_MESSAGE="<b>oi</b>")
        async with daemon_for(fast(settings, interval=3.0)) as watchdog:
            await until(lambda: beats_ok(watchdog) >= 1, timeout=30)
            url = watchdog.url + "/"  # type: ignore[attr-defined]
            dom, png = await asyncio.to_thread(snapshot, browser, url, tmp_path, "heartbeat")
    section = re.search(r'<section id="heartbeat"[^>]*>(.*?)</section>', dom, re.S)
    assert section is not None and "hidden" not in section.group(0).split(">")[0]
    shown = section.group(1)
    head = ["bot instance", "last result", "sent", "tries", "received", "replied", "delivered", "round trip"]
    assert all(f"<th>{cell}</th>" in shown for cell in head)
    assert "<td>loja</td>" in shown and '<span class="pill ok">ok</span>' in shown
    assert len(re.findall(r"<td>\d+\.\d\ds</td>", shown)) == 4  # every leg in seconds
    assert "&lt;b&gt;oi&lt;/b&gt;" in shown and "<b>oi</b>" not in shown  # the message, as text
    assert "the prober sonda sends" in shown
    assert PROBER not in dom and BOT not in dom
    assert png.read_bytes().startswith(b"\x89PNG")
