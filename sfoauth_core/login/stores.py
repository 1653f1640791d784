"""Where pending logins wait for their callback: one protocol, sync and async twins.

A store keeps :class:`~sfoauth_core.login.PendingLogin` records under an id the adapter
derives from the ``state`` (a keyed hash: the stored id reveals nothing). ``take`` reads
and deletes in one atomic step, so a login is used at most once even when two callbacks
race (exactly one gets it). Persistent stores keep the record encrypted with the token
cipher, bound to its id (:meth:`PendingLogin.seal`).

* :class:`InMemoryPendingLoginStore` / :class:`AsyncInMemoryPendingLoginStore` — one
  process (tests, demos, single-process tools);
* :class:`RedisPendingLoginStore` / :class:`AsyncRedisPendingLoginStore` — every worker
  on one Redis (``SET EX`` + ``GETDEL``; the ``redis`` extra);
* each adapter's database: ``sfoauth_django.storage.DjangoPendingLoginStore`` (the
  ``PendingAuthorization`` model) and ``sfoauth_fastapi.storage.SQLAlchemyPendingFlowStore``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from cachetools import TTLCache

from ..exceptions import StorageError
from ..storage.cipher import TokenCipher
from .transaction import DEFAULT_LOGIN_TTL, PendingLogin

__all__ = [
    "AsyncInMemoryPendingLoginStore",
    "AsyncPendingLoginStore",
    "AsyncRedisPendingLoginStore",
    "InMemoryPendingLoginStore",
    "PendingLoginStore",
    "RedisPendingLoginStore",
]


@runtime_checkable
class PendingLoginStore(Protocol):
    """Pending logins, sync; ``take`` is atomic and single use."""

    def put(self, login_id: str, pending: PendingLogin) -> None:
        """Remember ``pending`` under ``login_id`` until it expires.

        Raises:
            StorageError: the store failed.
        """
        ...

    def take(self, login_id: str) -> PendingLogin | None:
        """Remove and return the login (``None`` if unknown, used or expired).

        Raises:
            StorageError: the store failed, or the record is unreadable.
        """
        ...


@runtime_checkable
class AsyncPendingLoginStore(Protocol):
    """Async twin of :class:`PendingLoginStore`."""

    async def put(self, login_id: str, pending: PendingLogin) -> None:
        """Remember ``pending`` under ``login_id`` until it expires."""
        ...

    async def take(self, login_id: str) -> PendingLogin | None:
        """Remove and return the login, once."""
        ...


class _Memory:
    def __init__(self, *, ttl: float, maxsize: int) -> None:
        self._logins: TTLCache[str, PendingLogin] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._guard = threading.Lock()

    def _put(self, login_id: str, pending: PendingLogin) -> None:
        with self._guard:
            self._logins[login_id] = pending

    def _take(self, login_id: str) -> PendingLogin | None:
        with self._guard:
            return self._logins.pop(login_id, None)

    def __len__(self) -> int:
        return len(self._logins)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pending={len(self._logins)})"


class InMemoryPendingLoginStore(_Memory):
    """Pending logins in this process (a bounded TTL cache).

    Args:
        ttl: seconds a login is kept (records also carry their own expiry).
        maxsize: pending logins kept at most; the oldest are dropped beyond it.
    """

    def __init__(
        self, *, ttl: float = DEFAULT_LOGIN_TTL, maxsize: int = 10_000
    ) -> None:
        super().__init__(ttl=ttl, maxsize=maxsize)

    def put(self, login_id: str, pending: PendingLogin) -> None:
        """Remember ``pending``."""
        self._put(login_id, pending)

    def take(self, login_id: str) -> PendingLogin | None:
        """Remove and return the login, once."""
        return self._take(login_id)


class AsyncInMemoryPendingLoginStore(_Memory):
    """Async twin of :class:`InMemoryPendingLoginStore`."""

    def __init__(
        self, *, ttl: float = DEFAULT_LOGIN_TTL, maxsize: int = 10_000
    ) -> None:
        super().__init__(ttl=ttl, maxsize=maxsize)

    async def put(self, login_id: str, pending: PendingLogin) -> None:
        """Remember ``pending``."""
        self._put(login_id, pending)

    async def take(self, login_id: str) -> PendingLogin | None:
        """Remove and return the login, once."""
        return self._take(login_id)


class _Redis:
    def __init__(
        self,
        redis: Any,
        cipher: TokenCipher,
        *,
        prefix: str = "sfoauth:",
        ttl: float = DEFAULT_LOGIN_TTL,
    ) -> None:
        self.redis = redis
        self.cipher = cipher
        self.prefix = prefix
        self.ttl = ttl

    def _name(self, login_id: str) -> str:
        return f"{self.prefix}flow:{login_id}"

    def _seal(self, login_id: str, pending: PendingLogin) -> tuple[str, str, int]:
        return (
            self._name(login_id),
            pending.seal(self.cipher, login_id),
            max(1, int(self.ttl)),
        )

    def _open(self, login_id: str, raw: Any) -> PendingLogin | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return PendingLogin.unseal(self.cipher, login_id, text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"


def _redis_failed(exc: Exception) -> StorageError:
    return StorageError(f"Redis failed: {type(exc).__name__}")


class RedisPendingLoginStore(_Redis):
    """Pending logins in Redis, encrypted, expiring with ``SET EX``, taken with
    ``GETDEL``.

    Args:
        redis: a ``redis.Redis`` client.
        cipher: encrypts each record, bound to its id.
        prefix: namespace of the keys (``<prefix>flow:<id>``).
        ttl: seconds a login is kept.
    """

    def put(self, login_id: str, pending: PendingLogin) -> None:
        """Store the encrypted login with an expiry."""
        from redis.exceptions import RedisError

        name, blob, ttl = self._seal(login_id, pending)
        try:
            self.redis.set(name, blob, ex=ttl)
        except RedisError as exc:
            raise _redis_failed(exc) from exc

    def take(self, login_id: str) -> PendingLogin | None:
        """Atomically read and delete the login."""
        from redis.exceptions import RedisError

        try:
            raw = self.redis.getdel(self._name(login_id))
        except RedisError as exc:
            raise _redis_failed(exc) from exc
        return self._open(login_id, raw)


class AsyncRedisPendingLoginStore(_Redis):
    """Async twin of :class:`RedisPendingLoginStore` (a ``redis.asyncio.Redis``)."""

    async def put(self, login_id: str, pending: PendingLogin) -> None:
        """Store the encrypted login with an expiry."""
        from redis.exceptions import RedisError

        name, blob, ttl = self._seal(login_id, pending)
        try:
            await self.redis.set(name, blob, ex=ttl)
        except RedisError as exc:
            raise _redis_failed(exc) from exc

    async def take(self, login_id: str) -> PendingLogin | None:
        """Atomically read and delete the login."""
        from redis.exceptions import RedisError

        try:
            raw = await self.redis.getdel(self._name(login_id))
        except RedisError as exc:
            raise _redis_failed(exc) from exc
        return self._open(login_id, raw)
