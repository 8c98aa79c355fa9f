"""What the reference says about Evolution versions: defects by range, bot types with no code path.

Ranges are stated only where shared/reference/evolution-api.md (read at tag 2.3.6) or dify-api.md
supports them; anything newer than `VERIFIED_THROUGH` is reported as unverified, never as fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]
VERIFIED_THROUGH: Version = (2, 3, 6)  # the upstream tag the reference was read at
OLDEST_COVERED: Version = (2, 1, 0)  # the oldest version any reference fact names
ISSUES_URL = "https://github.com/evolution-foundation/evolution-api/issues/"


def parse_version(text: str) -> Version | None:
    """`2.3.6`, `v2.3.6` or `2.3.6-homolog` -> (2, 3, 6); anything else -> None."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def shown(version: Version) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class KnownDefect:
    issue: int
    title: str
    ranges: tuple[tuple[Version, Version], ...]  # inclusive
    basis: str  # where the range comes from, shown to the user
    applies_when: str  # "dify" | "expire" | "stop_bot_from_me": the configuration it bites
    fix: str

    def affects(self, version: Version) -> bool:
        return any(low <= version <= high for low, high in self.ranges)

    @property
    def url(self) -> str:
        return f"{ISSUES_URL}{self.issue}"


KNOWN_DEFECTS: tuple[KnownDefect, ...] = (
    KnownDefect(
        872,
        "Dify stops answering after a few (under 10) messages; Dify never sees the requests",
        (((2, 1, 0), (2, 3, 3)),),
        "reported for 2.1.0 to 2.3.3",
        "dify",
        "run `evo-watchdog run` so a stalled contact's session is reset (L1) and the instance restarted "
        "(L2) when needed; no release is known to fix it",
    ),
    KnownDefect(
        877,
        "a Dify session's `expire` is not enforced: closed/paused sessions never expire",
        (((2, 1, 1), (2, 1, 1)), ((2, 3, 0), (2, 3, 6))),
        "reported on 2.1.1; the 2.3.0-2.3.6 source has no expiry for Dify sessions",
        "expire",
        "do not rely on expire: delete stuck sessions (`evo-watchdog doctor --fix`, "
        "or the daemon's L1 repair)",
    ),
    KnownDefect(
        1359,
        "after an image nothing replies until the session is closed by hand",
        (((2, 2, 3), (2, 2, 3)),),
        "reported on 2.2.3",
        "dify",
        "delete the contact's session (`POST /dify/changeStatus` status delete); "
        "the daemon does it on a stall",
    ),
    KnownDefect(
        1598,
        "stopBotFromMe pauses a contact's session and it never reopens",
        (((2, 3, 0), (2, 3, 6)),),
        "the 2.3.0-2.3.6 source: paused forever, expire not enforced for Dify",
        "stop_bot_from_me",
        "set stopBotFromMe false on the bot (or in dify/settings) if the phone is used to answer, "
        "or delete paused sessions (`evo-watchdog doctor --fix`)",
    ),
)


def workflow_ignored(version: Version) -> bool | None:
    """True: the version has no code path for workflow bots (2.3.0-2.3.6). None: not verified."""
    if (2, 3, 0) <= version <= VERIFIED_THROUGH:
        return True
    if (2, 2, 0) <= version < (2, 3, 0):
        return False  # 2.2.x calls /workflows/run
    return None


def phone_version_setting_honoured(version: Version) -> bool:
    """CONFIG_SESSION_PHONE_VERSION pins the WhatsApp Web version up to 2.3.0; 2.3.1 removed it."""
    return version <= (2, 3, 0)
