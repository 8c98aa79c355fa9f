"""Turnaround p50/p95 for the status page: nearest rank over recent bot replies, per instance and kind."""

from __future__ import annotations

from watchdog.signals.turnaround import BOT, HUMAN, Turn
from watchdog.statuspage import turnaround_view


def turn(seconds: float, kind: str = "text", by: str = BOT, instance: str = "loja") -> Turn:
    return Turn(instance, "c-0", kind, seconds, by, 1, seconds > 5, False)


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


def test_an_instance_with_only_human_replies_has_no_quantiles() -> None:
    assert turnaround_view({"loja": [turn(3.0, by=HUMAN)]}, threshold=5.0)["instances"] == {}
