"""Chaos: the journal's disk fails under a running daemon (every SQLite read and write: disk I/O error),
then comes back.

The failure is real, not mocked: a directory squats the path of SQLite's rollback journal, so SQLite
cannot create it and every statement fails as on a dying disk; removing it is the disk coming back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Receiver
from tests.integration.stack import running_stack
from tests.reliability.harness import running, until
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
AUTO = {"WATCHDOG_RECOVERY_MODE": "auto", "WATCHDOG_RECOVERY_HOLD_SECONDS": "1"}


def alerted(post: tuple[str, dict[str, str], Any]) -> bool:
    """On-call was told the journal fails while instance:loja is open."""
    body = str(post[2])
    return "journal failing" in body and "instance:loja" in body


async def test_failing_journal_disk_keeps_detection_and_alerts_and_recovers(
    tmp_path: Path, receiver: Receiver
) -> None:
    """Expected while the disk fails: the fault is still detected (instance_disconnected), on-call is
    alerted that recovery is suspended and which problem is open, nothing is restarted (no action runs
    unless journaled first), /api/status shows `journal: failing: ...` and answers 200, /healthz stays 200
    with `degraded` in its detail, a maintenance request still works (held in memory), the failures are
    counted (watchdog_job_failures_total{job="journal"}) and the daemon never stops.
    Expected once the disk is back: recovery resumes by itself and repairs the instance."""
    alerts = receiver.url.replace("http://", "json://") + "/alerts"
    disk = tmp_path / "disk"
    disk.mkdir()
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        settings = stack.settings(
            **AUTO, WATCHDOG_NOTIFY_URLS=alerts, WATCHDOG_STATE_PATH=str(disk / "journal.db")
        )
        async with running(settings) as (watchdog, daemon):
            await until(lambda: watchdog.board.cycles >= 1, 30, "a first probe cycle")
            (disk / "journal.db-journal").mkdir()  # the disk fails
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(
                lambda: any(f.kind == "instance_disconnected" for f in watchdog.board.findings),
                30,
                "detection",
            )
            await until(lambda: any(map(alerted, receiver.posts)), 30, "the alert")  # never block the loop
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                status = await client.get("/api/status")
                health = await client.get("/healthz")
                silence = await client.post("/api/maintenance", json={"minutes": 5})
                unsilence = await client.delete("/api/maintenance")
            state_while_failing = stack.evolution.instances["loja"].state
            failures = watchdog.registry.get_sample_value("watchdog_job_failures_total", {"job": "journal"})

            (disk / "journal.db-journal").rmdir()  # the disk is back
            loja = stack.evolution.instances["loja"]
            await until(
                lambda: loja.state == "open" and not watchdog.recovery.journal_error,
                60,
                "recovery to resume and repair the instance",
            )
            kinds = [a.kind for a in watchdog.recovery.journal.recent_actions(0)]
    alert = next(body for _, _, body in filter(alerted, receiver.posts))
    assert alert["title"] == "Watchdog journal failing: recovery suspended"
    assert "disk I/O error" in alert["message"]
    assert state_while_failing == "connecting"  # nothing acted while nothing could be journaled
    assert status.status_code == 200
    assert status.json()["recovery"]["journal"].startswith("failing: ")
    assert status.json()["incidents"] == []
    assert health.status_code == 200 and "degraded: journal" in health.json()["detail"]
    assert silence.status_code == 200 and unsilence.status_code == 200
    assert failures is not None and failures >= 1
    assert "restart_instance" in kinds
