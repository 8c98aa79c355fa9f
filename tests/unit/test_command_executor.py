"""CommandExecutor: a real shell command per service, with its exit status and a timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from watchdog.recovery.executors import CommandExecutor


async def test_success_failure_timeout_and_missing_command() -> None:
    executor = CommandExecutor(
        {"evolution": "echo restarted evolution", "dify": "echo boom >&2; exit 3"}, timeout=0.5
    )
    ok = await executor.restart("evolution")
    failed = await executor.restart("dify")
    slow = await CommandExecutor({"dify": "sleep 5"}, timeout=0.2).restart("dify")
    missing = await executor.restart("redis")
    assert (ok.result, ok.detail) == ("ok", "restart command succeeded: restarted evolution")
    assert failed.result == "failed" and failed.detail == "restart command exited 3: boom"
    assert slow.result == "failed" and "timed out after 0.2s" in slow.detail
    assert missing.result == "failed" and "no restart command configured for redis" in missing.detail


async def test_a_cancelled_restart_ends_everything_the_command_started(tmp_path: Path) -> None:
    """A shutdown (or an action's deadline) cancels the restart: the shell and its children go too."""
    pidfile = tmp_path / "child.pid"
    executor = CommandExecutor({"dify": f"sleep 300 & echo $! > {pidfile}; wait"}, timeout=60)
    task = asyncio.create_task(executor.restart("dify"))
    for _ in range(500):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.01)
    child = int(pidfile.read_text())
    assert _alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        if not _alive(child):
            break
        await asyncio.sleep(0.01)
    assert not _alive(child)
    assert executor.deadline == 62


@pytest.mark.parametrize("steps", range(6))
async def test_a_restart_cancelled_while_its_process_starts_ends_the_whole_group(
    tmp_path: Path, steps: int
) -> None:
    """Cancelled at any point of the spawn (asyncio, cancelled while it connects the pipes, kills the shell
    alone and then waits on the pipe the shell's child still holds): the whole group ends, at once."""
    pidfile = tmp_path / "child.pid"
    executor = CommandExecutor({"dify": f"sleep 300 & echo $! > {pidfile}; wait"}, timeout=60)
    task = asyncio.create_task(executor.restart("dify"))
    for _ in range(steps):
        await asyncio.sleep(0)
    for _ in range(100):  # the loop held still: a shell already forked starts its child meanwhile
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.01)  # noqa: ASYNC251 - on purpose: the spawn must not move on
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(30):  # not the 300 s an orphan would hold the pipe for
            await task
    await asyncio.sleep(0.2)
    if pidfile.exists() and pidfile.read_text().strip():
        child = int(pidfile.read_text())
        for _ in range(200):
            if not _alive(child):
                break
            await asyncio.sleep(0.01)
        assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
