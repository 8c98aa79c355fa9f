"""Whether a page can reach anyone, and the recent pages that did not: for `/api/status` and the status
page. A page with no notify target is journaled `undelivered`; one a target refused, `failed`."""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.recovery.planner import FAILED, UNDELIVERED

PAGES_WINDOW = 24 * 3600.0  # a page that did not reach on-call is shown for a day


def paging_view(nobody: str, unreached: Mapping[str, int], *, mode: str) -> dict[str, object]:
    """`nobody`: the fix when no notification can be sent ("" when one can); `unreached`: incidents whose
    page was `undelivered` or `failed` (journal.unreached_pages). `warning` is one line, or ""."""
    undelivered, failed = unreached.get(UNDELIVERED, 0), unreached.get(FAILED, 0)
    lines = []
    if undelivered:
        fix = nobody or "no notify URL was set then (sent again if its incident is still open)"
        lines.append(f"{_pages(undelivered)} reached nobody: {fix}")
    if failed:
        lines.append(f"{_pages(failed)} not delivered to every notify target: sent again after the backoff")
    if not lines and nobody and mode != "off":
        lines.append(f"a page would reach nobody: {nobody}")
    warning = "; ".join(lines)
    return {"notify": nobody or "ok", "undelivered": undelivered, "failed": failed, "warning": warning}


def _pages(n: int) -> str:
    return f"{n} page{'s' if n != 1 else ''}"
