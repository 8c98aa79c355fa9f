"""OffIntegrations: an integration found off is skipped until the recheck time, and one answering again is
on at once (pure; the real probe is tests/integration/test_probe_off_integrations.py)."""

from __future__ import annotations

import pytest

from watchdog.integrations import BY_NAME, INTEGRATIONS
from watchdog.probes.offhere import OffIntegrations

ALL = tuple(i.name for i in INTEGRATIONS)


def names(off: OffIntegrations, now: float) -> tuple[str, ...]:
    return tuple(i.name for i in off.to_read(now))


def test_nothing_is_skipped_before_anything_was_read() -> None:
    off = OffIntegrations(recheck=60)
    assert names(off, 0) == ALL and off.skipped(0) == ()


def test_off_is_skipped_until_the_recheck_then_asked_again() -> None:
    off = OffIntegrations(recheck=60)
    off.learn(INTEGRATIONS, ["n8n", "typebot"], now=10)
    assert off.skipped(69.9) == ("typebot", "n8n")  # in the table's order
    assert "n8n" not in names(off, 69.9) and "dify" in names(off, 69.9)
    assert names(off, 70) == ALL
    off.learn(off.to_read(70), ["n8n"], now=70)  # typebot answered: on at once; n8n off again
    assert off.skipped(71) == ("n8n",) and off.skipped(129.9) == ("n8n",) and off.skipped(130) == ()


def test_a_read_that_did_not_ask_an_integration_leaves_what_is_known_of_it() -> None:
    off = OffIntegrations(recheck=60)
    off.learn(INTEGRATIONS, ["evoai"], now=0)
    off.learn([BY_NAME["dify"]], [], now=30)
    assert off.skipped(30) == ("evoai",)


def test_recheck_must_be_positive() -> None:
    with pytest.raises(ValueError, match="recheck"):
        OffIntegrations(recheck=0)
