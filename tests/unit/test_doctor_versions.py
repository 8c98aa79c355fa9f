"""Version parsing and the ranges the reference supports (nothing claimed past 2.3.6)."""

from __future__ import annotations

import pytest

from watchdog.doctor.versions import (
    KNOWN_DEFECTS,
    parse_version,
    phone_version_setting_honoured,
    workflow_ignored,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2.3.6", (2, 3, 6)), ("v2.2.3", (2, 2, 3)), ("2.3.0-homolog", (2, 3, 0)), ("latest", None), ("", None)],
)
def test_parse_version(text: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    ("issue", "inside", "outside"),
    [
        (872, [(2, 1, 0), (2, 2, 3), (2, 3, 3)], [(2, 0, 9), (2, 3, 4), (2, 3, 6)]),
        (877, [(2, 1, 1), (2, 3, 0), (2, 3, 6)], [(2, 1, 0), (2, 2, 3), (2, 3, 7)]),
        (1359, [(2, 2, 3)], [(2, 2, 2), (2, 2, 4), (2, 3, 6)]),
        (1598, [(2, 3, 0), (2, 3, 6)], [(2, 2, 9), (2, 3, 7)]),
    ],
)
def test_defect_ranges(
    issue: int, inside: list[tuple[int, int, int]], outside: list[tuple[int, int, int]]
) -> None:
    defect = next(d for d in KNOWN_DEFECTS if d.issue == issue)
    assert all(defect.affects(v) for v in inside)
    assert not any(defect.affects(v) for v in outside)
    assert defect.url.endswith(f"/issues/{issue}")


def test_workflow_bots_ignored_only_where_the_source_was_read() -> None:
    assert workflow_ignored((2, 3, 0)) is True and workflow_ignored((2, 3, 6)) is True
    assert workflow_ignored((2, 2, 3)) is False  # 2.2.x ran /workflows/run
    assert workflow_ignored((2, 3, 7)) is None and workflow_ignored((2, 1, 0)) is None


def test_phone_version_setting_honoured_up_to_2_3_0() -> None:
    assert phone_version_setting_honoured((2, 3, 0)) and phone_version_setting_honoured((2, 2, 3))
    assert not phone_version_setting_honoured((2, 3, 1))
