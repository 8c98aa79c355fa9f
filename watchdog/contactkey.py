"""The installation's contact key, which keys every contact id (model.contact_id).

WATCHDOG_CONTACT_KEY wins. Without it the daemon keeps a random key in `contact.key` beside
WATCHDOG_STATE_PATH: generated on first start (mode 0600, written to a temporary file and linked into
place, so a reader never sees half a key and two starting replicas end up with the same one), read on
every later start, so a contact keeps its id across restarts. The key is never logged or shown.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from loguru import logger

from watchdog.config import Settings, contact_key
from watchdog.errors import ConfigError

KEY_FILE = "contact.key"


def key_file(settings: Settings) -> Path:
    return settings.state_path.parent / KEY_FILE


def resolve_contact_key(settings: Settings, *, create: bool = True) -> bytes:
    """The key from the environment, else from the state directory's file, made there when `create`.

    One-off commands (check, doctor) pass `create=False`: they read the daemon's key when there is one
    and otherwise use a throwaway random key, so they leave no state behind and still show no number."""
    if settings.contact_key:
        return settings.contact_key.encode()
    path = key_file(settings)
    if settings.redis_url:
        logger.warning(
            "WATCHDOG_CONTACT_KEY is unset: contact ids are keyed with {}; a second replica names "
            "contacts alike only with the same WATCHDOG_CONTACT_KEY or the same state directory",
            path,
        )
    try:
        return _read(path).encode()
    except FileNotFoundError:
        if not create:
            return secrets.token_hex(32).encode()
    return _create(path).encode()


def _read(path: Path) -> str:
    """The key in `path` (FileNotFoundError when there is none)."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            raw = file.read(4096)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read the contact key file {path}: {exc.strerror or exc}") from None
    try:
        key = contact_key(raw.decode().strip())
    except UnicodeDecodeError:
        key, accepted = "", "UTF-8 text"
    except ValueError as exc:
        key, accepted = "", str(exc)
    else:
        accepted = "a key, not an empty file"
    if not key:
        raise ConfigError(
            f"contact key file {path} is invalid: expected {accepted}; remove it to have a new key "
            "generated (contact ids then change)"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "contact key file {} is readable by others (mode {:o}): chmod 600 it", path, mode & 0o777
        )
    return key


def _create(path: Path) -> str:
    """A new random key in `path`, unless another process made one first (then that one)."""
    key = secrets.token_hex(32)
    data = (key + "\n").encode()
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        _write_new(temporary, data)
        try:
            os.link(temporary, path)  # atomic, and fails when the file exists: never replaces a key in use
        except FileExistsError:
            return _read(path)
        except OSError:  # a file system without hard links: create in place, still never replacing
            try:
                _write_new(path, data)
            except FileExistsError:
                return _read(path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the contact key file {path}: {exc.strerror or exc} (make the directory of "
            "WATCHDOG_STATE_PATH writable, or set WATCHDOG_CONTACT_KEY)"
        ) from None
    logger.info("generated a contact key in {}: contact ids stay the same across restarts", path)
    return key


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
