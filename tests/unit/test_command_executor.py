"""CommandExecutor: a real shell command per service, with its exit status and a timeout."""

from __future__ import annotations

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
