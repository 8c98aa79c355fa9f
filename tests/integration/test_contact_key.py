"""The contact key: WATCHDOG_CONTACT_KEY wins; otherwise generated once into the state directory (0600)
and read again on every later start, so a contact keeps its id; never logged."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from loguru import logger
from prometheus_client import CollectorRegistry

from watchdog.app import Watchdog
from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.contactkey import KEY_FILE, resolve_contact_key
from watchdog.errors import ConfigError
from watchdog.model import contact_id
from watchdog.signals.turnaround import BOT, TEXT

pytestmark = pytest.mark.integration

ANA = "5511987600001@s.whatsapp.net"
ENV_KEY = "MARKER-CONTACT-KEY-FROM-ENV-77"


@pytest.fixture
def logged() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    yield lines
    logger.remove(sink)


def settings_in(state: Path, **env: str) -> Settings:
    return Settings.from_env({"WATCHDOG_STATE_PATH": str(state / "journal.db"), **env})


def ana_as_seen_by(settings: Settings) -> str:
    """The id a freshly constructed Watchdog gives Ana's answered turn."""
    return asyncio.run(_ana_as_seen_by(settings))


async def _ana_as_seen_by(settings: Settings) -> str:
    async with httpx.AsyncClient() as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        tracker = watchdog.conversations.tracker
        tracker.inbound("loja", ANA, "in-1", TEXT)
        turn = tracker.reply("loja", ANA, "out-1", replied_by=BOT)
        watchdog.recovery.journal.close()
    assert turn is not None
    return turn.contact


def test_a_key_is_generated_once_with_mode_0600_and_reused_across_restarts(
    tmp_path: Path, logged: list[str]
) -> None:
    """Expected: the first Watchdog writes contact.key (0600, 64 hex digits) and names Ana with it; a
    second one reads the same file (not rewritten) and names her alike; the key is in no log line."""
    settings = settings_in(tmp_path)
    first = ana_as_seen_by(settings)
    path = tmp_path / KEY_FILE
    key = path.read_text().strip()
    before = path.stat()
    assert stat.S_IMODE(before.st_mode) == 0o600
    assert len(key) == 64 and int(key, 16) >= 0
    assert first == contact_id(ANA, key=key.encode())
    assert sorted(p.name for p in tmp_path.iterdir() if "key" in p.name) == [KEY_FILE]  # no temporaries

    second = ana_as_seen_by(settings)
    after = path.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert any("generated a contact key" in line for line in logged)
    assert not any(key in line for line in logged)


def test_the_key_in_the_environment_wins_and_writes_nothing(tmp_path: Path) -> None:
    """Expected: with WATCHDOG_CONTACT_KEY, ids come from that key, whether or not a key file exists, and
    no file is made."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert ana_as_seen_by(settings_in(fresh, WATCHDOG_CONTACT_KEY=ENV_KEY)) == contact_id(
        ANA, key=ENV_KEY.encode()
    )
    assert not (fresh / KEY_FILE).exists()

    from_file = ana_as_seen_by(settings_in(tmp_path))
    from_env = ana_as_seen_by(settings_in(tmp_path, WATCHDOG_CONTACT_KEY=ENV_KEY))
    assert from_env == contact_id(ANA, key=ENV_KEY.encode()) != from_file


def test_replicas_starting_together_end_up_with_one_key(tmp_path: Path) -> None:
    """Expected: eight starts racing in one empty state directory all get the same key, the file's."""
    settings = settings_in(tmp_path)
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def start() -> None:
        barrier.wait()
        keys.append(resolve_contact_key(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and set(keys) == {(tmp_path / KEY_FILE).read_text().strip().encode()}


def test_check_and_doctor_read_the_daemons_key_but_never_write_one(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    throwaway = resolve_contact_key(settings, create=False)
    assert len(throwaway) >= 16 and not (tmp_path / KEY_FILE).exists()
    assert resolve_contact_key(settings, create=False) != throwaway  # nothing kept
    daemon = resolve_contact_key(settings)
    assert resolve_contact_key(settings, create=False) == daemon


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "expected a key, not an empty file"),
        ("short\n", "expected a key of at least 16 characters"),
        ("MARKER two words in the key file\n", "without spaces"),
    ],
)
def test_a_bad_key_file_stops_the_start_with_one_line(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / KEY_FILE).write_text(content)
    with pytest.raises(ConfigError) as caught:
        resolve_contact_key(settings_in(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and expected in message and str(tmp_path / KEY_FILE) in message
    assert not content.strip() or content.strip() not in message


def test_a_state_directory_that_cannot_take_the_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot create the contact key file .*WATCHDOG_CONTACT_KEY"):
        resolve_contact_key(settings_in(tmp_path / "missing"))


def test_run_exits_2_with_the_one_line_when_the_key_file_is_bad(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("short\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHDOG_", "EVOLUTION_", "DIFY_"))}
    env["WATCHDOG_STATE_PATH"] = str(tmp_path / "journal.db")
    done = subprocess.run(
        [sys.executable, "-m", "watchdog", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("evo-watchdog: contact key file ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "journal.db").exists()


def test_a_key_file_others_can_read_is_used_with_a_warning(tmp_path: Path, logged: list[str]) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("a-key-someone-copied-here-0123\n")
    os.chmod(path, 0o644)
    assert resolve_contact_key(settings_in(tmp_path)) == b"a-key-someone-copied-here-0123"
    assert any("readable by others (mode 644)" in line for line in logged)
    assert not any("someone-copied" in line for line in logged)


def test_two_replicas_without_a_shared_key_are_warned(tmp_path: Path, logged: list[str]) -> None:
    resolve_contact_key(settings_in(tmp_path, WATCHDOG_REDIS_URL="redis://127.0.0.1:6379/0"))
    assert any("a second replica names contacts alike only with the same" in line for line in logged)
    logged.clear()
    resolve_contact_key(
        settings_in(tmp_path, WATCHDOG_REDIS_URL="redis://127.0.0.1:6379/0", WATCHDOG_CONTACT_KEY=ENV_KEY)
    )
    assert logged == []
