"""In-process token stores: for tests, examples and single-process apps.

Records live in a ``cachetools.LRUCache`` (bounded: beyond ``maxsize`` connections the
least
recently used one is forgotten). Nothing is persisted, so nothing is encrypted; use the
Redis
store, or the Django / SQLAlchemy stores, when tokens must outlive the process or be
shared.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
from cachetools import LRUCache

from ..tokens import Token
from .base import (
    TokenRecord,
    aholding,
    holding,
    idle_order,
    marked_record,
    next_record,
)

__all__ = ["AsyncInMemoryTokenStore", "InMemoryTokenStore"]

DEFAULT_MAXSIZE = 10_000


class _Records:
    """The shared, I/O-free part: records and the compare-and-swap under a guard."""

    def __init__(self, maxsize: int) -> None:
        self._records: LRUCache[str, TokenRecord] = LRUCache(maxsize=maxsize)
        self._guard = threading.Lock()

    def _get(self, key: str) -> TokenRecord | None:
        with self._guard:
            return self._records.get(key)

    def _save(
        self,
        key: str,
        token: Token,
        grant: str | None,
        username: str | None,
        expected_version: int | None,
    ) -> TokenRecord:
        with self._guard:
            record = next_record(
                key,
                self._records.get(key),
                token=token,
                grant=grant,
                username=username,
                expected_version=expected_version,
            )
            self._records[key] = record
            return record

    def _mark(self, key: str, reason: str, expected_version: int | None) -> TokenRecord:
        with self._guard:
            record = next_record(
                key,
                self._records.get(key),
                reason=reason,
                expected_version=expected_version,
            )
            self._records[key] = record
            return record

    def _marker(
        self, key: str, digest: str | None, expected_version: int
    ) -> TokenRecord:
        with self._guard:
            record = marked_record(
                key,
                self._records.get(key),
                digest,
                expected_version=expected_version,
            )
            self._records[key] = record
            return record

    def _idle(self, idle_since: float, limit: int | None) -> list[str]:
        with self._guard:
            records = list(self._records.items())
        return idle_order(records, idle_since=idle_since, limit=limit)

    def _delete(self, key: str) -> None:
        with self._guard:
            self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class InMemoryTokenStore(_Records):
    """A per-process :class:`~.base.TokenStore`; ``lock(key)`` is a per-key thread lock.

    Args:
        maxsize: how many connections to keep.
        lock_wait: seconds to wait for a key's lock before :class:`StorageError`.
    """

    def __init__(
        self, *, maxsize: int = DEFAULT_MAXSIZE, lock_wait: float = 120.0
    ) -> None:
        super().__init__(maxsize)
        self.lock_wait = lock_wait
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        return self._get(key)

    def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token``; see :func:`~.base.next_record` for the rules."""
        return self._save(key, token, grant, username, expected_version)

    def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the token."""
        return self._mark(key, reason, expected_version)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._delete(key)

    def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write or clear the "refresh in flight" marker; see
        :func:`~.base.marked_record`."""
        return self._marker(key, digest, expected_version)

    def idle_keys(self, *, idle_since: float, limit: int | None = None) -> list[str]:
        """Keys of connections idle since before ``idle_since``; see
        :func:`~.base.idle_order`."""
        return self._idle(idle_since, limit)

    @contextmanager
    def lock(self, key: str) -> Iterator[object]:
        """Hold ``key``'s lock for the block."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.Lock())
        with holding(lock, wait=self.lock_wait, what=f"token lock of {key!r}"):
            yield lock


class AsyncInMemoryTokenStore(_Records):
    """A per-process :class:`~.base.AsyncTokenStore`; ``lock(key)`` is a per-key
    ``anyio.Lock`` (asyncio or trio)."""

    def __init__(
        self, *, maxsize: int = DEFAULT_MAXSIZE, lock_wait: float = 120.0
    ) -> None:
        super().__init__(maxsize)
        self.lock_wait = lock_wait
        self._locks: dict[str, anyio.Lock] = {}

    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        return self._get(key)

    async def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token``; see :func:`~.base.next_record` for the rules."""
        return self._save(key, token, grant, username, expected_version)

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the token."""
        return self._mark(key, reason, expected_version)

    async def delete(self, key: str) -> None:
        """Forget ``key``."""
        self._delete(key)

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write or clear the "refresh in flight" marker; see
        :func:`~.base.marked_record`."""
        return self._marker(key, digest, expected_version)

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None
    ) -> list[str]:
        """Keys of connections idle since before ``idle_since``; see
        :func:`~.base.idle_order`."""
        return self._idle(idle_since, limit)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[object]:
        """Hold ``key``'s lock for the block."""
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, anyio.Lock())
        async with aholding(lock, wait=self.lock_wait, what=f"token lock of {key!r}"):
            yield lock
