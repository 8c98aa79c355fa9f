"""Node's util.inspect as Evolution's console.log prints objects, and SimLog's lines, checked against what
Node 20 printed for the same values (tests/data/node_inspect.json)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from watchdog.signals.logrules import classify, records
from watchdog.sim.jsinspect import inspect
from watchdog.sim.logfmt import SimLog

NODE = json.loads((Path(__file__).resolve().parents[1] / "data" / "node_inspect.json").read_text("utf-8"))
NOW = datetime(2026, 12, 1, 0, 22, 26, tzinfo=timezone(timedelta(hours=-3)))
BODY = {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}


@pytest.mark.parametrize("case", NODE["inspect"], ids=lambda c: json.dumps(c["value"])[:40])
def test_inspect_prints_what_node_prints(case: dict[str, Any]) -> None:
    assert inspect(case["value"]) == case["printed"]


def test_simlog_writes_evolutions_lines_byte_for_byte() -> None:
    colour, plain = io.StringIO(), io.StringIO()
    SimLog(colour, color=True, pid=7).evolution("ERROR", "DifyService", BODY, now=NOW)
    SimLog(plain, pid=7).evolution("ERROR", "DifyService", BODY, now=NOW)
    SimLog(plain, pid=7).evolution("INFO", "X", "hello", instance="loja", now=NOW)
    assert colour.getvalue() == NODE["colour_object"]
    assert plain.getvalue().splitlines() == [NODE["plain_object"], NODE["plain_string_with_instance"]]


def test_simlog_writes_both_dify_formats_and_the_rules_read_them() -> None:
    """Docker's default LOG_FORMAT (32-hex trace id or empty) and a source install's (10-hex request id)."""
    out = io.StringIO()
    at = datetime(2026, 12, 1, 0, 22, 25, 983000, tzinfo=UTC)
    text, where, trace = (
        "Unknown Error when workflow entry running",
        "workflow_entry.py:124",
        "738562e393" + "0" * 22,
    )
    SimLog(out).dify("ERROR", text, thread="Dummy-2", where=where, now=at)
    SimLog(out, dify_format="source").dify("ERROR", text, where=where, trace_id=trace, now=at)
    assert out.getvalue().splitlines() == [
        f"2026-12-01 00:22:25.983 ERROR [Dummy-2] [{where}]  - {text}",
        f"2026-12-01 00:22:25,983 ERROR [{where}] 738562e393 {text}",
    ]
    assert [classify(r).rule for r in records(out.getvalue().splitlines())] == ["dify_app_error"] * 2
    with pytest.raises(ValueError):
        SimLog(out, dify_format="json")
