"""Turnaround p50/p95 for the status page: nearest rank over recent bot replies, per instance and kind;
and its paging line (pages that reached nobody)."""

from __future__ import annotations

import pytest

from watchdog.recovery.paging import paging_view
from watchdog.signals.turnaround import BOT, HUMAN, Turn
from watchdog.statuspage import turnaround_view


def turn(
    seconds: float, kind: str = "text", by: str = BOT, instance: str = "loja", integration: str = "dify"
) -> Turn:
    return Turn(instance, "c-0", kind, seconds, by, 1, seconds > 5, False, integration)


def test_quantiles_by_kind_against_the_threshold_ignoring_human_replies() -> None:
    recent = {
        "loja": [turn(float(s)) for s in range(1, 21)] + [turn(9.0, "media"), turn(30.0, by=HUMAN)],
        "suporte": [turn(0.5, instance="suporte")],
    }
    view = turnaround_view(recent, threshold=5.0)
    assert view["threshold_seconds"] == 5.0
    text = view["instances"]["loja"]["text"]
    assert (text["count"], text["p50"], text["p95"], text["over_threshold"]) == (20, 10.0, 19.0, True)
    assert view["instances"]["loja"]["media"] == {"count": 1, "p50": 9.0, "p95": 9.0, "over_threshold": True}
    assert view["instances"]["suporte"]["text"]["over_threshold"] is False


def test_quantiles_by_integration_over_every_instance() -> None:
    recent = {
        "loja": [turn(1.0), turn(2.0), turn(8.0, integration="typebot"), turn(4.0, integration="")],
        "suporte": [turn(3.0, instance="suporte"), turn(9.0, "media", instance="suporte")],
    }
    view = turnaround_view(recent, threshold=5.0)["integrations"]
    assert sorted(view) == ["dify", "typebot", "unknown"]
    assert view["dify"]["text"] == {"count": 3, "p50": 2.0, "p95": 3.0, "over_threshold": False}
    assert view["dify"]["media"]["over_threshold"] is True
    assert view["typebot"]["text"]["p95"] == 8.0 and "media" not in view["typebot"]
    assert view["unknown"]["text"]["count"] == 1


def test_an_instance_with_only_human_replies_has_no_quantiles() -> None:
    assert turnaround_view({"loja": [turn(3.0, by=HUMAN)]}, threshold=5.0)["instances"] == {}


NOBODY = "set WATCHDOG_NOTIFY_URLS"


@pytest.mark.parametrize(
    ("nobody", "unreached", "mode", "warning"),
    [
        (NOBODY, {"undelivered": 1}, "auto", "1 page reached nobody: set WATCHDOG_NOTIFY_URLS"),
        (
            "",
            {"undelivered": 2},
            "auto",
            "2 pages reached nobody: no notify URL was set then (sent again if its incident is still open)",
        ),
        (
            "",
            {"failed": 1},
            "dry-run",
            "1 page not delivered to every notify target: sent again after the backoff",
        ),
        (NOBODY, {}, "auto", "a page would reach nobody: set WATCHDOG_NOTIFY_URLS"),
        (NOBODY, {}, "dry-run", "a page would reach nobody: set WATCHDOG_NOTIFY_URLS"),  # pages are real
        (NOBODY, {}, "off", ""),
        ("", {"undelivered": 0, "failed": 0}, "auto", ""),
    ],
)
def test_the_paging_line_says_which_pages_reached_nobody_and_the_fix(
    nobody: str, unreached: dict[str, int], mode: str, warning: str
) -> None:
    view = paging_view(nobody, unreached, mode=mode)
    assert view["warning"] == warning
    assert view["notify"] == (nobody or "ok")
    counts = (unreached.get("undelivered", 0), unreached.get("failed", 0))
    assert (view["undelivered"], view["failed"]) == counts
