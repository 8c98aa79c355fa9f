"""Which bot integrations an Evolution server has off, so the session probe stops asking them every round.

Off is a server-wide fact: `<Label> is disabled` comes from the integration's `*_ENABLED` setting and a
missing route from the release, and both change only when Evolution restarts. Asking the five a Dify
user leaves off (upstream's default), on every instance, was over 40% of a probe cycle's requests. An
integration found off is skipped and asked again after `recheck` seconds, so one turned on (and Evolution
restarted) is read within that time. Pure: the caller passes the monotonic time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from watchdog.integrations import INTEGRATIONS, Integration

OFF_RECHECK_SECONDS = 600.0


class OffIntegrations:
    def __init__(
        self, recheck: float = OFF_RECHECK_SECONDS, integrations: Sequence[Integration] = INTEGRATIONS
    ) -> None:
        if recheck <= 0:
            raise ValueError("recheck must be positive")
        self.recheck = recheck
        self.integrations = tuple(integrations)
        self._found_at: dict[str, float] = {}  # integration name -> when it was last found off

    def skipped(self, now: float) -> tuple[str, ...]:
        """The integrations known off and not yet due to be asked again, in the table's order."""
        return tuple(
            i.name
            for i in self.integrations
            if i.name in self._found_at and now - self._found_at[i.name] < self.recheck
        )

    def to_read(self, now: float) -> tuple[Integration, ...]:
        skip = set(self.skipped(now))
        return tuple(i for i in self.integrations if i.name not in skip)

    def learn(self, asked: Iterable[Integration], off: Iterable[str], now: float) -> None:
        """What one read answered: `off` among the integrations `asked`; the others are on."""
        found = set(off)
        for integ in asked:
            if integ.name in found:
                self._found_at[integ.name] = now
            else:
                self._found_at.pop(integ.name, None)
