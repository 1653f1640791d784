"""Redis token stores: shared by every process and machine that talks to one Redis.

Layout, under a namespace ``prefix`` (default ``sfoauth:``):

* ``<prefix>rec:<key>`` — a hash with ``v`` (the record version, in clear: the fence)
  and ``d`` (the whole :class:`~.base.TokenRecord`, encrypted by
  :class:`~.cipher.TokenCipher` with the connection key as associated data). No token
  ever reaches Redis in plaintext.
* ``<prefix>lock:<key>`` — a ``redis-py`` lock (``SET NX PX`` with a random owner value)
  whose lease (``lock_timeout``) must outlast a whole refresh, retries included; the
  token manager checks that against the app's HTTP timeout and retry policy.

Writes are compare-and-swap in one Lua script (read ``v``, compare, write ``v+1`` and
``d``), so a holder whose lease ran out while it talked to Salesforce cannot overwrite
the newer record written by the next holder: it gets
:class:`~.base.VersionConflictError` instead.

Redis failures surface as :class:`~sfoauth_core.exceptions.StorageError`.

The read-modify-write logic is written once, as a small generator (:meth:`_write_plan`)
that yields Redis operations; the sync and async stores only perform them, through the
plan kernel (:mod:`sfoauth_core._plans`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from .._plans import adrive, drive
from ..exceptions import StorageError
from ..tokens import Token
from .base import (
    DEFAULT_LOCK_TIMEOUT,
    TokenRecord,
    VersionConflictError,
    idle_order,
    is_idle,
    lock_bounds,
    marked_record,
    next_record,
    record_from_bytes,
    record_to_bytes,
)
from .cipher import TokenCipher

__all__ = ["AsyncRedisTokenStore", "RedisTokenStore"]

logger = logging.getLogger("sfoauth.storage")

DEFAULT_PREFIX = "sfoauth:"
#: Default lock lease. It must exceed the worst-case refresh (attempts x HTTP timeout +
#: back-off); with the defaults (3 x 30 s + 2 x 30 s Retry-After cap) that is 150 s.

# KEYS[1] = record hash; ARGV = expected version, new version, ciphertext.
# Returns {1, new} on success, {0, actual} on a version mismatch (0 = no record).
_CAS_SCRIPT = """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then
  return {0, v}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
return {1, tonumber(ARGV[2])}
"""

_MAX_CAS_ATTEMPTS = 16


@dataclass(frozen=True, slots=True)
class _Read:
    name: str


@dataclass(frozen=True, slots=True)
class _Cas:
    name: str
    expected: int
    new: int
    blob: str


_Op = _Read | _Cas
_Plan = Generator[_Op, Any, TokenRecord]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_Client = TypeVar("_Client", "Redis[Any]", "AsyncRedis[Any]")


class _RedisStoreBase(Generic[_Client]):
    """Naming, encryption and the compare-and-swap plan; no I/O. The constructor is
    shared by the sync and async stores (same arguments, same key layout)."""

    def __init__(
        self,
        redis: _Client,
        cipher: TokenCipher,
        *,
        prefix: str = DEFAULT_PREFIX,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float | None = None,
        lock_poll: float = 0.01,
    ) -> None:
        if not isinstance(cipher, TokenCipher):
            raise TypeError(
                "cipher must be a TokenCipher (the Redis store keeps ciphertext)"
            )
        self.cipher = cipher
        self.prefix = prefix
        self.lock_timeout, self.lock_wait = lock_bounds(lock_timeout, lock_wait)
        self.lock_poll = lock_poll
        self.redis: _Client = redis
        self._cas: Any = redis.register_script(_CAS_SCRIPT)  # Script or AsyncScript

    def record_name(self, key: str) -> str:
        """The Redis key of ``key``'s record."""
        return f"{self.prefix}rec:{key}"

    def lock_name(self, key: str) -> str:
        """The Redis key of ``key``'s lock."""
        return f"{self.prefix}lock:{key}"

    def _decode(self, key: str, raw: Mapping[Any, Any]) -> TokenRecord | None:
        if not raw:
            return None
        fields = {_text(k): v for k, v in raw.items()}
        if "d" not in fields or "v" not in fields:
            raise StorageError(f"token record {key!r} in Redis is incomplete")
        plaintext = self.cipher.decrypt(_text(fields["d"]), context=key)
        record = record_from_bytes(plaintext)
        version = int(_text(fields["v"]))
        if record.version != version:
            # ``v`` is the fence; a re-encryption keeps it, so the two always agree.
            raise StorageError(
                f"token record {key!r} in Redis has a mismatched version"
            )
        return record

    def _write_plan(
        self,
        key: str,
        *,
        token: Token | None = None,
        grant: str | None = None,
        username: str | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> _Plan:
        return self._cas_plan(
            key,
            lambda current: next_record(
                key,
                current,
                token=token,
                grant=grant,
                username=username,
                reason=reason,
                expected_version=expected_version,
            ),
            expected_version,
        )

    def _marker_plan(
        self, key: str, digest: str | None, expected_version: int
    ) -> _Plan:
        return self._cas_plan(
            key,
            lambda current: marked_record(
                key, current, digest, expected_version=expected_version
            ),
            expected_version,
        )

    def _cas_plan(
        self,
        key: str,
        change: Callable[[TokenRecord | None], TokenRecord],
        expected_version: int | None,
    ) -> _Plan:
        name = self.record_name(key)
        for _ in range(_MAX_CAS_ATTEMPTS):
            current = self._decode(key, (yield _Read(name)))
            record = change(current)
            blob = self.cipher.encrypt(record_to_bytes(record), context=key)
            read = current.version if current is not None else 0
            ok, actual = yield _Cas(name, read, record.version, blob)
            if int(ok):
                return record
            if expected_version is not None:
                raise VersionConflictError(key, expected_version, int(actual) or None)
            # An unconditional write lost a race with another writer: read again.
        raise StorageError(f"token record {key!r} is changing too fast to write")

    def _idle_candidate(
        self, name: Any, raw: Mapping[Any, Any], idle_since: float
    ) -> tuple[str, TokenRecord] | None:
        key = _text(name)[len(self.prefix) + 4 :]
        try:
            record = self._decode(key, raw)
        except StorageError:
            # Unreadable (a removed key, tampering): not for the keep-alive to fix.
            logger.warning("token record %r cannot be read; skipped", key)
            return None
        if record is None or not is_idle(record, idle_since):
            return None
        return key, record

    def _reencrypt_candidates(self, raw: Mapping[Any, Any]) -> tuple[int, str] | None:
        fields = {_text(k): v for k, v in raw.items()}
        if "d" not in fields or "v" not in fields:
            return None
        blob = _text(fields["d"])
        if not self.cipher.needs_reencrypt(blob):
            return None
        return int(_text(fields["v"])), blob

    def _count_unknown(self, missing: dict[str, int], blob: Any) -> None:
        # A record made with a key the cipher no longer has (issue 13 defect 9).
        try:
            kid = self.cipher.key_id_of(_text(blob))
        except StorageError:
            kid = "(not a sfoauth ciphertext)"
        if kid not in self.cipher.key_ids:
            missing[kid] = missing.get(kid, 0) + 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, cipher={self.cipher!r})"


def _storage_error(exc: Exception) -> StorageError:
    return StorageError(f"Redis is unavailable or failed: {type(exc).__name__}: {exc}")


class RedisTokenStore(_RedisStoreBase["Redis[Any]"]):
    """A :class:`~.base.TokenStore` on Redis, shared across processes and machines.

    Args:
        redis: a ``redis.Redis`` client.
        cipher: encrypts every record (required: Redis never sees a plaintext token).
        prefix: namespace for every Redis key this store touches.
        lock_timeout: lease of the per-connection lock, in seconds; a crashed
            holder's lock frees itself after this long. Must outlast a whole refresh.
        lock_wait: how long to wait for the lock before :class:`StorageError`
            (default: ``lock_timeout`` + 10 s).
        lock_poll: seconds between lock attempts while waiting.

    Example:
        >>> store = RedisTokenStore(
        ...     redis.Redis(), TokenCipher([key]), prefix="myapp:sf:"
        ... )
    """

    def _perform(self, op: _Op) -> Any:
        if isinstance(op, _Read):
            return self.redis.hgetall(op.name)
        return self._cas(keys=[op.name], args=[op.expected, op.new, op.blob])

    def _run(self, plan: _Plan) -> TokenRecord:
        try:
            return drive(plan, self._perform)
        except RedisError as exc:
            raise _storage_error(exc) from exc

    def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, decrypted, or ``None``."""
        try:
            raw = self.redis.hgetall(self.record_name(key))
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return self._decode(key, raw)

    def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Encrypt and store ``token``; compare-and-swap on ``expected_version``."""
        return self._run(
            self._write_plan(
                key,
                token=token,
                grant=grant,
                username=username,
                expected_version=expected_version,
            )
        )

    def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the (encrypted) token."""
        return self._run(
            self._write_plan(key, reason=reason, expected_version=expected_version)
        )

    def delete(self, key: str) -> None:
        """Remove ``key``'s record."""
        try:
            self.redis.delete(self.record_name(key))
        except RedisError as exc:
            raise _storage_error(exc) from exc

    def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write or clear the "refresh in flight" marker (inside the encrypted record);
        compare-and-swap, see :func:`~.base.marked_record`."""
        return self._run(self._marker_plan(key, digest, expected_version))

    def idle_keys(
        self, *, idle_since: float, limit: int | None = None, batch_size: int = 500
    ) -> list[str]:
        """Keys of connections idle since before ``idle_since``, oldest first (see
        :func:`~.base.idle_order`).

        Scans and decrypts every record under the prefix (the timestamps live inside
        the encrypted record): meant for a periodic keep-alive, not a request path.
        Unreadable records are skipped.
        """
        found: list[tuple[str, TokenRecord]] = []
        try:
            for name in self.redis.scan_iter(
                match=f"{self.prefix}rec:*", count=batch_size
            ):
                hit = self._idle_candidate(name, self.redis.hgetall(name), idle_since)
                if hit is not None:
                    found.append(hit)
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return idle_order(found, idle_since=idle_since, limit=limit)

    @contextmanager
    def lock(self, key: str) -> Iterator[object]:
        """Hold ``key``'s Redis lock (with a lease) for the block.

        Raises:
            StorageError: Redis is down, or the lock was not free within ``lock_wait``.
        """
        lock = self.redis.lock(
            self.lock_name(key),
            timeout=self.lock_timeout,
            sleep=self.lock_poll,
            blocking_timeout=self.lock_wait,
            thread_local=False,
        )
        try:
            acquired = lock.acquire()
        except RedisError as exc:
            raise _storage_error(exc) from exc
        if not acquired:
            raise StorageError(f"timed out waiting for the token lock of {key!r}")
        try:
            yield lock
        finally:
            try:
                lock.release()
            except LockNotOwnedError:
                # The lease ran out first; compare-and-swap already kept our writes from
                # overwriting the next holder's.
                logger.warning("token lock of %r expired before it was released", key)
            except (LockError, RedisError):
                logger.warning("could not release the token lock of %r", key)

    def reencrypt_all(self, *, batch_size: int = 500) -> int:
        """Re-encrypt every record under the cipher's first key; return how many
        changed.

        Idempotent and resumable: records already under the first key are skipped,
        and each rewrite is a compare-and-swap that keeps the version, so a
        concurrent refresh wins.
        """
        changed = 0
        try:
            for name in self.redis.scan_iter(
                match=f"{self.prefix}rec:*", count=batch_size
            ):
                key = _text(name)[len(self.prefix) + 4 :]
                candidate = self._reencrypt_candidates(self.redis.hgetall(name))
                if candidate is None:
                    continue
                version, blob = candidate
                new = self.cipher.reencrypt(blob, context=key)
                ok, _ = self._cas(keys=[name], args=[version, version, new])
                changed += int(ok)
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return changed


class AsyncRedisTokenStore(_RedisStoreBase["AsyncRedis[Any]"]):
    """The asynchronous twin of :class:`RedisTokenStore` over ``redis.asyncio.Redis``.

    Same arguments, same key layout: sync and async processes can share one Redis.
    """

    async def _perform(self, op: _Op) -> Any:
        if isinstance(op, _Read):
            return await self.redis.hgetall(op.name)
        return await self._cas(keys=[op.name], args=[op.expected, op.new, op.blob])

    async def _run(self, plan: _Plan) -> TokenRecord:
        try:
            return await adrive(plan, self._perform)
        except RedisError as exc:
            raise _storage_error(exc) from exc

    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, decrypted, or ``None``."""
        try:
            raw = await self.redis.hgetall(self.record_name(key))
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return self._decode(key, raw)

    async def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Encrypt and store ``token``; compare-and-swap on ``expected_version``."""
        return await self._run(
            self._write_plan(
                key,
                token=token,
                grant=grant,
                username=username,
                expected_version=expected_version,
            )
        )

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the (encrypted) token."""
        return await self._run(
            self._write_plan(key, reason=reason, expected_version=expected_version)
        )

    async def delete(self, key: str) -> None:
        """Remove ``key``'s record."""
        try:
            await self.redis.delete(self.record_name(key))
        except RedisError as exc:
            raise _storage_error(exc) from exc

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Async twin of :meth:`RedisTokenStore.set_refresh_marker`."""
        return await self._run(self._marker_plan(key, digest, expected_version))

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None, batch_size: int = 500
    ) -> list[str]:
        """Async twin of :meth:`RedisTokenStore.idle_keys`."""
        found: list[tuple[str, TokenRecord]] = []
        try:
            async for name in self.redis.scan_iter(
                match=f"{self.prefix}rec:*", count=batch_size
            ):
                raw = await self.redis.hgetall(name)
                hit = self._idle_candidate(name, raw, idle_since)
                if hit is not None:
                    found.append(hit)
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return idle_order(found, idle_since=idle_since, limit=limit)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[object]:
        """Hold ``key``'s Redis lock (with a lease) for the block.

        Raises:
            StorageError: Redis is down, or the lock was not free within ``lock_wait``.
        """
        lock = self.redis.lock(
            self.lock_name(key),
            timeout=self.lock_timeout,
            sleep=self.lock_poll,
            blocking_timeout=self.lock_wait,
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise _storage_error(exc) from exc
        if not acquired:
            raise StorageError(f"timed out waiting for the token lock of {key!r}")
        try:
            yield lock
        finally:
            try:
                await lock.release()
            except LockNotOwnedError:
                logger.warning("token lock of %r expired before it was released", key)
            except (LockError, RedisError):
                logger.warning("could not release the token lock of %r", key)

    async def unknown_key_ids(self, *, batch_size: int = 500) -> dict[str, int]:
        """Key ids that stored records use but the cipher lacks, with their counts
        (those records cannot be decrypted; ids are fingerprints, never keys).

        Raises:
            StorageError: Redis failed.
        """
        missing: dict[str, int] = {}
        try:
            async for name in self.redis.scan_iter(
                match=f"{self.prefix}rec:*", count=batch_size
            ):
                blob = await self.redis.hget(name, "d")
                if blob is not None:
                    self._count_unknown(missing, blob)
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return missing

    async def reencrypt_all(self, *, batch_size: int = 500) -> int:
        """Async twin of :meth:`RedisTokenStore.reencrypt_all`."""
        changed = 0
        try:
            async for name in self.redis.scan_iter(
                match=f"{self.prefix}rec:*", count=batch_size
            ):
                key = _text(name)[len(self.prefix) + 4 :]
                candidate = self._reencrypt_candidates(await self.redis.hgetall(name))
                if candidate is None:
                    continue
                version, blob = candidate
                new = self.cipher.reencrypt(blob, context=key)
                ok, _ = await self._cas(keys=[name], args=[version, version, new])
                changed += int(ok)
        except RedisError as exc:
            raise _storage_error(exc) from exc
        return changed
