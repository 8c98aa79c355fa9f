"""Contact ids are HMAC-SHA256 keyed with the installation's contact key: stable, and not brute-forceable."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from watchdog.clock import FakeClock
from watchdog.model import contact_id
from watchdog.signals.turnaround import BOT, TEXT, TurnaroundTracker

ANA = "5511987600001@s.whatsapp.net"
KEY = b"installation-key-0123456789abcdef"
OTHER_KEY = b"another-installation-key-98765"


def numbers(first: int, count: int) -> list[str]:
    """A small block of Brazilian mobile numbers as JIDs: the search an attacker would run."""
    return [f"55{n:011d}@s.whatsapp.net" for n in range(first, first + count)]


def brute_force(target: str, candidates: list[str], hash_of: Callable[[str], str]) -> list[str]:
    return [jid for jid in candidates if hash_of(jid) == target]


def test_the_same_key_gives_the_same_id_and_another_key_another() -> None:
    assert contact_id(ANA, key=KEY) == contact_id(ANA, key=bytes(KEY))
    assert contact_id(ANA, key=KEY) != contact_id(ANA, key=OTHER_KEY)
    assert contact_id(ANA, key=KEY) != contact_id("5511987600002@s.whatsapp.net", key=KEY)
    assert contact_id(ANA, key=KEY).startswith("c-") and len(contact_id(ANA, key=KEY)) == 12


def test_the_id_is_not_an_unkeyed_hash_of_the_number() -> None:
    digits = ANA.split("@")[0]
    unkeyed = {"c-" + hashlib.sha256(text.encode()).hexdigest()[:10] for text in (ANA, digits, "+" + digits)}
    assert contact_id(ANA, key=KEY) not in unkeyed
    assert digits not in contact_id(ANA, key=KEY)


def test_brute_force_over_a_block_of_numbers_finds_nothing_without_the_key() -> None:
    """Expected: 20,000 numbers around Ana's (hers included) hashed plainly or with a wrong key never give
    her id; with the right key the same search finds her, so the search itself works."""
    target = contact_id(ANA, key=KEY)
    candidates = numbers(11987590000, 20_000)
    assert ANA in candidates

    def unkeyed(jid: str) -> str:
        return "c-" + hashlib.sha256(jid.encode()).hexdigest()[:10]

    assert brute_force(target, candidates, unkeyed) == []
    assert brute_force(target, candidates, lambda jid: contact_id(jid, key=OTHER_KEY)) == []
    assert brute_force(target, candidates, lambda jid: contact_id(jid, key=KEY)) == [ANA]


@pytest.mark.parametrize("key", [b"", b"short", b"fifteen-bytes-1"])
def test_a_short_or_missing_key_is_refused_rather_than_used(key: bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        contact_id(ANA, key=key)


def test_turns_and_waiting_contacts_carry_the_injected_keys_id(clock: FakeClock) -> None:
    trackers = [
        TurnaroundTracker(clock, contact_key=key, threshold_seconds=5, stall_seconds=30)
        for key in (KEY, OTHER_KEY)
    ]
    for n, tracker in enumerate(trackers):
        tracker.inbound("loja", ANA, f"in-{n}", TEXT)
    waiting = [tracker.pending()[0] for tracker in trackers]
    assert [p.contact for p in waiting] == [contact_id(ANA, key=KEY), contact_id(ANA, key=OTHER_KEY)]
    assert all("installation" not in repr(p) for p in waiting)  # the key is not in a view's repr
    clock.advance(1)
    turns = [tracker.reply("loja", ANA, f"out-{n}", replied_by=BOT) for n, tracker in enumerate(trackers)]
    assert [t.contact for t in turns if t] == [contact_id(ANA, key=KEY), contact_id(ANA, key=OTHER_KEY)]
