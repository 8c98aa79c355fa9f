"""The status page in Debian's headless Chromium, against a real `evo-watchdog run` watching the emulators:
during an open incident (the instance restart still verifying), after its recovery, and after a page that
reached nobody (no WATCHDOG_NOTIFY_URLS). With WATCHDOG_UPDATE_SCREENSHOTS=1 the first two screenshots are
also copied to docs/img/ for docs/status-page.md; a normal run writes only into its tmp directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.infra import free_port, require_binary
from tests.integration.stack import Stack, running_stack
from tests.integration.test_recovery import point_webhooks
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.e2e
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
UPDATE_SCREENSHOTS = os.environ.get("WATCHDOG_UPDATE_SCREENSHOTS") == "1"
# As in docs/status-page.md: no network beyond loopback, no first-run work, a fresh profile per run.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ODD_INSTANCE = "<u>zap"  # instance names come from Evolution: the page must show them as text
ANA, BIA = "5511987600001@s.whatsapp.net", "5511987600002@s.whatsapp.net"


def chromium(binary: str, url: str, profile: Path, *extra: str) -> str:
    completed = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=8000", *extra, url],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def snapshot(binary: str, url: str, tmp_path: Path, name: str) -> tuple[str, Path]:
    """The rendered DOM after the page's script fetched /api/status, and a screenshot."""
    png = tmp_path / f"{name}.png"
    profile = tmp_path / f"profile-{name}"
    dom = chromium(binary, url, profile, "--dump-dom", f"--screenshot={png}", "--window-size=1400,1000")
    return dom, png


@pytest.fixture
def watched_stack(tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """The emulators and a real watchdog daemon (recovery auto) with their webhooks pointed at it."""
    port = free_port()
    with running_stack(EvolutionOptions(instances=("loja", ODD_INSTANCE), debounce_seconds=0)) as stack:
        env = stack.env(
            WATCHDOG_LISTEN=f"127.0.0.1:{port}",
            WATCHDOG_RECOVERY_MODE="auto",
            WATCHDOG_RECOVERY_HOLD_SECONDS="1",
            WATCHDOG_STALL_SECONDS="5",
            WATCHDOG_TURNAROUND_THRESHOLD_SECONDS="2",
        )
        with (tmp_path / "watchdog.log").open("w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "watchdog", "run"], env={**os.environ, **env}, stderr=log
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda s: daemon.poll() is None and s["cycles"] >= 1, url, "a first probe cycle")
            point_webhooks(stack, url + "/webhook/evolution")
            yield stack, url
        finally:
            daemon.terminate()
            daemon.wait(20)


def status(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url + "/api/status", timeout=5)
    except httpx.HTTPError:
        return {"cycles": 0}
    return response.json() if response.status_code == 200 else {"cycles": 0}


def wait_for(condition: Any, url: str, what: str, timeout: float = 40.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = status(url)
        if condition(current):
            return current
        assert time.monotonic() < deadline, f"{what} never came (see watchdog.log): {current}"
        time.sleep(0.2)


def incident(s: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((i for i in s.get("incidents", []) if i["key"] == key), None)


def test_status_page_shows_the_incident_while_open_and_its_resolution(
    watched_stack: tuple[Stack, str], tmp_path: Path
) -> None:
    browser = require_binary("chromium", "chromium")
    stack, url = watched_stack
    page = httpx.get(url + "/", timeout=5)
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no external assets
    for jid, kind in ((ANA, "text"), (BIA, "image"), (ANA, "text")):
        stack.inbound(jid, "Oi", kind=kind)
    wait_for(lambda s: "text" in s["turnaround"]["instances"].get("loja", {}), url, "turnaround")
    wait_for(
        lambda s: "dify" in s["instances"].get("loja", {}).get("sessions_by_integration", {}),
        url,
        "loja's Dify sessions, read by the sessions probe",
    )

    stack.evolution.reconnect_seconds = 12.0  # the restart's verification takes a while: it stays open
    stack.fault("evolution", "socket_closed", instance="loja")
    wait_for(
        lambda s: (
            (i := incident(s, "instance:loja")) is not None
            and not i["closed_at"]
            and [a["kind"] for a in i["actions"]] == ["restart_instance"]
        ),
        url,
        "the open incident with its restart running",
    )
    during, during_png = snapshot(browser, url + "/", tmp_path, "during")

    wait_for(
        lambda s: (i := incident(s, "instance:loja")) is not None and i["closed_at"], url, "recovery", 90
    )
    after, after_png = snapshot(browser, url + "/", tmp_path, "after")

    stack.fault("evolution", "instance_unloaded", instance="loja")  # L2 is refused: then a page
    paged = wait_for(
        lambda s: (
            (i := incident(s, "instance:loja")) is not None
            and not i["closed_at"]
            and ("page", "undelivered") in [(a["kind"], a["result"]) for a in i["actions"]]
        ),
        url,
        "a page, with no WATCHDOG_NOTIFY_URLS",
        90,
    )
    unreached, unreached_png = snapshot(browser, url + "/", tmp_path, "unreached")

    assert "OPEN instance:loja" in during and "UNHEALTHY" in during
    assert "L2 restart_instance instance:loja: running" in during
    assert "connection state is connecting" in during  # the finding, listed
    assert "text p50 / p95" in during and "(n=" in during  # turnaround by kind against the threshold
    assert "<td>dify opened " in during  # sessions by integration and status
    assert "<th>bot integration</th>" in during and "<td>dify</td>" in during  # turnaround by integration
    assert "RESOLVED instance:loja" in after and "no open incidents" in after and "HEALTHY" in after
    assert "L2 restart_instance instance:loja: ok" in after
    assert paged["recovery"]["pages"]["undelivered"] == 1
    assert "1 page reached nobody: set WATCHDOG_NOTIFY_URLS" in unreached  # the banner
    assert ' page on-call: <span class="pill bad">undelivered</span>' in unreached  # the action, in red
    assert "page reached nobody" in unreached  # the incident's line, not "paged"
    assert "a page would reach nobody: set WATCHDOG_NOTIFY_URLS" in after  # before any page
    for dom in (during, after, unreached):
        assert "&lt;u&gt;zap" in dom and "<u>" not in dom  # shown as text, never markup
        assert "5511987600001" not in dom and "5511987600002" not in dom  # contacts by hash only
        assert 'href="metrics"' in dom and 'href="api/status"' in dom
    for png in (during_png, after_png, unreached_png):
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    assert during_png.read_bytes() != after_png.read_bytes()
    if UPDATE_SCREENSHOTS:
        shutil.copyfile(during_png, DOCS_IMG / "status-incident.png")
        shutil.copyfile(after_png, DOCS_IMG / "status-recovered.png")
