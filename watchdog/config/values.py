"""What each setting accepts: parsers from the raw text to the typed value. A parser raises `Invalid`
saying what is accepted; `settings.py` turns that into a ConfigError naming the variable."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from watchdog.model import MIN_CONTACT_KEY_BYTES

Parser = Callable[[str], Any]
# The heartbeat writes to a real WhatsApp number: more often than this may get the spare number flagged.
E2E_MIN_INTERVAL_SECONDS = 60.0


class Invalid(ValueError):
    """Raised by a parser; its message says what is accepted."""


def _url(raw: str) -> str:
    try:
        parts = urlsplit(raw)  # raises on a malformed [IPv6] host
        host = parts.hostname
    except ValueError:
        raise Invalid("an http:// or https:// URL with a host") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Invalid("an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise Invalid("an http:// or https:// URL with a valid port") from None
    return raw.rstrip("/")


def _optional_url(raw: str) -> str:
    return _url(raw) if raw else ""


def _secret(raw: str) -> str:
    if raw != raw.strip() or any(c.isspace() or ord(c) < 32 for c in raw):
        raise Invalid("a key without spaces or control characters")
    return raw


def contact_key(raw: str) -> str:
    """WATCHDOG_CONTACT_KEY or a contact.key file's text: empty (generate one) or a key long enough that
    contact ids cannot be brute-forced."""
    if raw and (len(raw.encode()) < MIN_CONTACT_KEY_BYTES or any(c.isspace() or ord(c) < 32 for c in raw)):
        raise Invalid(f"a key of at least {MIN_CONTACT_KEY_BYTES} characters without spaces or control codes")
    return raw


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")


def _names(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not _NAME.match(item):
            raise Invalid("a comma-separated list of names (letters, digits, _ . - @ :)")
    if len(set(items)) != len(items):
        raise Invalid("a comma-separated list of names without repeats")
    return items


def _one_name(what: str) -> Parser:
    """One name or none: `what` says which (a container, an instance)."""

    def parse(raw: str) -> str:
        names = _names(raw)
        if len(names) > 1:
            raise Invalid(what)
        return names[0] if names else ""

    return parse


_optional_name = _one_name("one container name or id")
_optional_instance = _one_name("one instance name (letters, digits, _ . - @ :)")


def _ranged(convert: Callable[[str], float], what: str, low: float, high: float) -> Parser:
    accepted = f"{what} between {low:g} and {high:g}"

    def parse(raw: str) -> float:
        try:
            value = convert(raw)
        except ValueError:
            raise Invalid(accepted) from None
        if not low <= value <= high:  # NaN fails too
            raise Invalid(accepted)
        return value

    return parse


def _seconds(low: float, high: float) -> Parser:
    return _ranged(float, "a number of seconds", low, high)


def _count(low: int, high: int) -> Parser:
    return _ranged(int, "a whole number", low, high)


def _choice(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise Invalid("one of " + "|".join(choices))
        return value

    return parse


def _docker_url(raw: str) -> str:
    if not re.match(r"^(unix:///\S+|tcp://[^\s/]+:\d+|https?://[^\s/]+(:\d+)?)/?$", raw):
        raise Invalid("unix:///path/to/docker.sock, tcp://HOST:PORT or http(s)://HOST[:PORT]")
    return raw


def _message(raw: str) -> str:
    if len(raw) > 1000 or any(ord(c) < 32 and c not in "\n\t" for c in raw):
        raise Invalid("text of at most 1000 characters without control characters")
    return raw


_PHONE = re.compile(r"^\+?(\d{8,15})$")


def e2e_numbers(raw: str) -> tuple[tuple[str, str], ...]:
    """WATCHDOG_E2E_TO_NUMBER: `instance=number` pairs, or one bare number (instance "", resolved at use
    when exactly one instance is watched). Numbers keep their digits only."""
    accepted = (
        "comma-separated instance=number pairs (loja=5511987654321), or one bare number in international "
        "form when one instance is watched"
    )
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        name, sep, number = item.rpartition("=")
        digits = _PHONE.match(number.strip())
        if digits is None or (sep and not _NAME.match(name.strip())):
            raise Invalid(accepted)
        pairs.append((name.strip(), digits[1]))
    names = [name for name, _ in pairs]
    if ("" in names and len(pairs) > 1) or len(set(names)) != len(names):
        raise Invalid(accepted + ", each instance once")
    return tuple(pairs)


def _heartbeat_text(raw: str) -> str:
    if not raw.strip():
        raise Invalid("text of 1 to 1000 characters without control characters")
    return _message(raw)


def _command(raw: str) -> str:
    if len(raw) > 1000 or any(ord(c) < 32 for c in raw):
        raise Invalid("one shell command line of at most 1000 characters")
    return raw.strip()


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise Invalid("true or false")
    return value in ("true", "1", "yes")


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    host = host.strip("[]")
    # isdigit() alone admits digits such as '²' that int() refuses, and lengths int() refuses to parse
    if not sep or not host or not (port.isascii() and port.isdigit() and len(port) <= 5) or int(port) > 65535:
        raise Invalid("HOST:PORT, for example 127.0.0.1:8787 (port 0 picks a free one)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can reach a server listening there."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _notify_urls(raw: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in re.split(r"[,\s]+", raw) if u.strip())
    for url in urls:
        if "://" not in url:
            raise Invalid("apprise URLs separated by commas or spaces, each like scheme://...")
    return urls


def _optional_redis_url(raw: str) -> str:
    accepted = "redis://[:password@]HOST[:PORT][/DB], rediss://... or unix:///path/redis.sock"
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        host, port = parts.hostname, parts.port  # raise on a bad port or [IPv6] host
    except ValueError:
        raise Invalid(accepted) from None
    if parts.scheme == "unix" and parts.path:
        return raw
    if parts.scheme not in ("redis", "rediss") or not host or port == 0:
        raise Invalid(accepted)
    return raw


def _redis_key(raw: str) -> str:
    if not raw or len(raw) > 200 or any(c.isspace() or ord(c) < 32 for c in raw):
        raise Invalid("a Redis key of at most 200 characters without spaces")
    return raw


def _path(raw: str) -> Path:
    if not raw.strip():
        raise Invalid("a file path")
    return Path(raw).expanduser()
