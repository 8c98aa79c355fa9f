"""The lease in Redis: the single-instance lock pattern from the Redis docs, plus the handoff record.

Acquire is `SET key me NX PX ttl`; renew, release and publishing the handoff are Lua scripts that act
only while the key still holds this replica's id, so a replica that lost its lease cannot touch the
new leader's. Every redis-py exception becomes a CoordinationError here, with no URL or password in it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from watchdog.errors import CoordinationError

T = TypeVar("T")
HANDOFF_TTL_MS = 3_600_000  # the planner looks back one hour (restart budgets)

RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
PUBLISH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisLeaseStore:
    """One lease key and, beside it (`<key>:handoff`), the leader's recent journal for its successor."""

    def __init__(self, url: str, key: str, *, timeout: float) -> None:
        self.key = key
        self.handoff_key = f"{key}:handoff"
        self.timeout = timeout
        self._secret = urlsplit(url).password or ""
        self._redis: Redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # the lease loop is the retry; a stuck call must not pile up
            decode_responses=True,
        )
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)
        self._publish = self._redis.register_script(PUBLISH)

    async def acquire(self, me: str, ttl_ms: int) -> bool:
        return bool(await self._call(self._redis.set(self.key, me, nx=True, px=ttl_ms)))

    async def renew(self, me: str, ttl_ms: int) -> bool:
        return bool(await self._call(self._renew(keys=[self.key], args=[me, ttl_ms])))

    async def release(self, me: str) -> bool:
        return bool(await self._call(self._release(keys=[self.key], args=[me])))

    async def holder(self) -> str | None:
        value = await self._call(self._redis.get(self.key))
        return str(value) if value is not None else None

    async def publish(self, me: str, record: str) -> bool:
        """Store the handoff record, but only while `me` still holds the lease."""
        keys = [self.key, self.handoff_key]
        return bool(await self._call(self._publish(keys=keys, args=[me, record, HANDOFF_TTL_MS])))

    async def handoff(self) -> str | None:
        value = await self._call(self._redis.get(self.handoff_key))
        return str(value) if value is not None else None

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _call(self, pending: Awaitable[T]) -> T:
        """One round trip, bounded in time; redis and socket errors become CoordinationError."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                return await pending
        except TimeoutError:
            raise CoordinationError(f"redis did not answer within {self.timeout * 2:g}s") from None
        except (RedisError, OSError) as exc:
            raise CoordinationError(self._scrub(f"redis: {type(exc).__name__}: {exc}")) from None

    def _scrub(self, message: str) -> str:
        message = " ".join(message.split())[:300]
        return message.replace(self._secret, "***") if self._secret else message
