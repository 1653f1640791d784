"""What a token store must do: the :class:`TokenStore` / :class:`AsyncTokenStore`
protocols.

A store keeps one :class:`TokenRecord` per connection key. The record wraps the
:class:`~sfoauth_core.tokens.Token` with what the token lifecycle needs besides the
token:

* ``version`` — a counter bumped by every write. Writers that read a record, talked to
  Salesforce and now want to write back pass ``expected_version``; if someone else wrote
  in the meantime the store raises :class:`VersionConflictError` instead of overwriting
  a newer token (the fencing check that keeps a stale lock holder from clobbering a
  rotated refresh token).
* ``grant`` — how the token was obtained (``authorization_code``, ``jwt_bearer``,
  ``client_credentials``...), which decides how it is renewed: refreshed, or re-minted.
* ``status`` / ``reason`` — ``needs_reauth`` once Salesforce refused the grant; the
  token row is kept (SECURITY.md item 25) until a new login replaces it.
* ``refreshed_at`` — when the stored refresh token was last issued or used at
  Salesforce (every token save stamps it); the keep-alive finds idle connections by it
  (:meth:`TokenStore.idle_keys`).
* ``refresh_started_at`` / ``refresh_digest`` — the durable "refresh in flight" marker
  (:meth:`TokenStore.set_refresh_marker`): written and committed before a refresh
  request leaves, so that it outlives the refresher's process, database session and
  lock; whoever finds a young marker for the refresh token it holds does not replay it.

``lock(key)`` is a context manager giving single flight to whoever shares the store: a
Redis lock with a lease, a database row lock inside a transaction (``SELECT ... FOR
UPDATE``), or a plain per-key lock in memory. It yields nothing useful; reads and writes
inside the block go through the same store methods.

Stores that persist anything keep only ciphertext (:class:`~.cipher.TokenCipher`); use
:func:`record_to_bytes` / :func:`record_from_bytes` for the plaintext form that gets
encrypted.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import anyio

from ..exceptions import MalformedResponseError, StorageError, VersionConflictError
from ..tokens import Token

__all__ = [
    "ACTIVE",
    "DEFAULT_LOCK_TIMEOUT",
    "MINTED_GRANTS",
    "NEEDS_REAUTH",
    "AsyncTokenStore",
    "ConnectionStatus",
    "TokenRecord",
    "TokenStore",
    "VersionConflictError",
    "aholding",
    "holding",
    "idle_order",
    "is_idle",
    "lock_bounds",
    "marked_record",
    "next_record",
    "postgres_lock_settings",
    "record_from_bytes",
    "record_to_bytes",
    "refresh_digest",
]

ConnectionStatus = Literal["active", "needs_reauth"]
ACTIVE: ConnectionStatus = "active"
NEEDS_REAUTH: ConnectionStatus = "needs_reauth"

#: Grants whose tokens are renewed by minting a new one (no refresh token exists).
MINTED_GRANTS = frozenset({"jwt_bearer", "client_credentials"})


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One connection's stored token and lifecycle state.

    Attributes:
        token: the token set (access token, refresh token, instance URL, ids).
        version: bumped by every write; the compare-and-swap fence.
        grant: how the token was obtained; ``jwt_bearer`` and ``client_credentials`` are
            re-minted instead of refreshed.
        username: the JWT ``sub`` a ``jwt_bearer`` connection is minted for, if not the
            app's.
        status: ``active`` or ``needs_reauth``.
        reason: why re-authorization is needed (Salesforce's error, never a token
            value).
        updated_at: epoch seconds of the last write.
        refreshed_at: epoch seconds when the stored refresh token was last issued or
            used at Salesforce (stamped by every token save, kept by status changes
            and markers); ``None`` for records written before the field existed.
        refresh_started_at: the "refresh in flight" marker: epoch seconds when a
            refresh of the refresh token named by ``refresh_digest`` was about to be
            sent; ``None`` when no refresh is known to be in flight.
        refresh_digest: :func:`refresh_digest` of the refresh token that refresh
            presents (never the token itself).
    """

    token: Token
    version: int = 1
    grant: str = "authorization_code"
    username: str | None = None
    status: ConnectionStatus = ACTIVE
    reason: str = ""
    updated_at: float = field(default=0.0, compare=False)
    refreshed_at: float | None = field(default=None, compare=False)
    refresh_started_at: float | None = None
    refresh_digest: str | None = None

    @property
    def needs_reauth(self) -> bool:
        return self.status == NEEDS_REAUTH

    @property
    def is_minted(self) -> bool:
        """True when the token is renewed by minting (JWT bearer, client
        credentials)."""
        return self.grant in MINTED_GRANTS

    def refresh_in_flight(self, digest: str | None, now: float, window: float) -> bool:
        """True when the marker says a refresh presenting the refresh token with
        ``digest`` started less than ``window`` seconds before ``now`` (so it may still
        be in flight at Salesforce)."""
        return (
            digest is not None
            and self.refresh_digest == digest
            and self.refresh_started_at is not None
            and now - self.refresh_started_at < window
        )

    @property
    def idle_since(self) -> float:
        """When the refresh token was last issued or used: ``refreshed_at``, or
        ``updated_at`` for records written before ``refreshed_at`` existed."""
        return self.refreshed_at if self.refreshed_at is not None else self.updated_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token.to_dict(),
            "version": self.version,
            "grant": self.grant,
            "username": self.username,
            "status": self.status,
            "reason": self.reason,
            "updated_at": self.updated_at,
            "refreshed_at": self.refreshed_at,
            "refresh_started_at": self.refresh_started_at,
            "refresh_digest": self.refresh_digest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenRecord:
        try:
            status = data.get("status", ACTIVE)
            if status not in (ACTIVE, NEEDS_REAUTH):
                raise StorageError("stored token record has an unknown status")
            return cls(
                token=Token.from_dict(data["token"]),
                version=int(data["version"]),
                grant=str(data.get("grant") or "authorization_code"),
                username=data.get("username"),
                status=status,
                reason=str(data.get("reason") or ""),
                updated_at=float(data.get("updated_at") or 0.0),
                refreshed_at=_optional_float(data.get("refreshed_at")),
                refresh_started_at=_optional_float(data.get("refresh_started_at")),
                refresh_digest=(
                    str(data["refresh_digest"]) if data.get("refresh_digest") else None
                ),
            )
        except (KeyError, TypeError, ValueError, MalformedResponseError) as exc:
            raise StorageError(
                f"stored token record is malformed ({type(exc).__name__})"
            ) from None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def refresh_digest(refresh_token: str | None) -> str | None:
    """What a marker records of the refresh token a refresh presents: the first 128
    bits of its SHA-256, hex (enough to tell tokens apart, useless to present).
    ``None`` for no refresh token."""
    if not refresh_token:
        return None
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32]


def record_to_bytes(record: TokenRecord) -> bytes:
    """The plaintext form of a record (encrypt it before it leaves the process)."""
    return json.dumps(record.to_dict(), separators=(",", ":")).encode()


def record_from_bytes(data: bytes) -> TokenRecord:
    """Inverse of :func:`record_to_bytes`.

    Raises:
        StorageError: the bytes are not a record.
    """
    try:
        payload = json.loads(data)
    except ValueError:
        raise StorageError("stored token record is not JSON") from None
    if not isinstance(payload, dict):
        raise StorageError("stored token record is not a JSON object")
    return TokenRecord.from_dict(payload)


def next_record(
    key: str,
    current: TokenRecord | None,
    *,
    token: Token | None = None,
    grant: str | None = None,
    username: str | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
    now: float | None = None,
) -> TokenRecord:
    """The record a write produces; the one place the compare-and-swap rule lives.

    Stores call it with the current record (read inside their own atomic section) and
    write the result only if it returns.

    Args:
        token: the new token (a save); ``None`` for a status change.
        grant: for a save; defaults to the current record's (a refresh keeps how the
            connection was obtained).
        username: for a save; defaults to the current record's.
        reason: for a status change: mark the record ``needs_reauth`` with this reason.
        expected_version: the version the writer read; ``None`` writes unconditionally.
            ``0`` means "only if there is no record".

    Raises:
        VersionConflictError: ``expected_version`` does not match, or a status change
            names a missing record.
    """
    actual = current.version if current is not None else None
    if expected_version is not None and (actual or 0) != expected_version:
        raise VersionConflictError(key, expected_version, actual)
    stamp = time.time() if now is None else now
    version = (actual or 0) + 1
    if token is not None:
        if grant is None and current is not None:
            # A refresh keeps how the connection was obtained, and for whom.
            grant, username = current.grant, username or current.username
        return TokenRecord(
            token=token,
            version=version,
            grant=grant or "authorization_code",
            username=username,
            status=ACTIVE,
            reason="",
            updated_at=stamp,
            refreshed_at=stamp,
        )
    if current is None:
        raise VersionConflictError(key, expected_version, None)
    return replace(
        current,
        version=version,
        status=NEEDS_REAUTH,
        reason=reason or "re-authorization required",
        updated_at=stamp,
        refresh_started_at=None,
        refresh_digest=None,
    )


def marked_record(
    key: str,
    current: TokenRecord | None,
    digest: str | None,
    *,
    expected_version: int,
    now: float | None = None,
) -> TokenRecord:
    """The record a :meth:`TokenStore.set_refresh_marker` write produces.

    Sets the marker (``refresh_started_at`` = now, ``refresh_digest`` = ``digest``), or
    clears it when ``digest`` is ``None``; bumps the version and ``updated_at``; keeps
    the token, status and ``refreshed_at``. Always compare-and-swap.

    Raises:
        VersionConflictError: the record is missing or its version is not
            ``expected_version``.
    """
    actual = current.version if current is not None else None
    if current is None or actual != expected_version:
        raise VersionConflictError(key, expected_version, actual)
    stamp = time.time() if now is None else now
    return replace(
        current,
        version=current.version + 1,
        updated_at=stamp,
        refresh_started_at=None if digest is None else stamp,
        refresh_digest=digest,
    )


def idle_order(
    records: Iterable[tuple[str, TokenRecord]],
    *,
    idle_since: float,
    limit: int | None = None,
) -> list[str]:
    """The keys :meth:`TokenStore.idle_keys` returns, from ``(key, record)`` pairs.

    Keeps active records with a refresh token whose grant is refreshed (not minted)
    and whose :attr:`TokenRecord.idle_since` is before ``idle_since``; oldest first
    (ties by key), at most ``limit``.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    idle = sorted(
        (record.idle_since, key)
        for key, record in records
        if is_idle(record, idle_since)
    )
    keys = [key for _, key in idle]
    return keys if limit is None else keys[:limit]


def is_idle(record: TokenRecord, idle_since: float) -> bool:
    """The :meth:`TokenStore.idle_keys` filter for one record."""
    return (
        record.status == ACTIVE
        and not record.is_minted
        and bool(record.token.refresh_token)
        and record.idle_since < idle_since
    )


@runtime_checkable
class TokenStore(Protocol):
    """A synchronous token store shared by everyone who must agree on one token."""

    def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        ...

    def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token`` (status back to active); compare-and-swap on
        ``expected_version``."""
        ...

    def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping its token row."""
        ...

    def delete(self, key: str) -> None:
        """Remove the record (disconnect). Missing keys are ignored."""
        ...

    def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write (``digest`` given) or clear (``None``) the "refresh in flight"
        marker, compare-and-swap on ``expected_version``, durably (committed when it
        returns, even inside :meth:`lock`); see :func:`marked_record`."""
        ...

    def idle_keys(self, *, idle_since: float, limit: int | None = None) -> list[str]:
        """Keys of active connections with a refresh token whose refresh token was
        last issued or used before ``idle_since``; oldest first (see
        :func:`idle_order`)."""
        ...

    def lock(self, key: str) -> AbstractContextManager[object]:
        """Single flight for ``key`` across everyone sharing this store."""
        ...


@runtime_checkable
class AsyncTokenStore(Protocol):
    """The asynchronous twin of :class:`TokenStore`; same names, awaitable."""

    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        ...

    async def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token`` (status back to active); compare-and-swap on
        ``expected_version``."""
        ...

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping its token row."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the record (disconnect). Missing keys are ignored."""
        ...

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Async twin of :meth:`TokenStore.set_refresh_marker`."""
        ...

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None
    ) -> list[str]:
        """Async twin of :meth:`TokenStore.idle_keys`."""
        ...

    def lock(self, key: str) -> AbstractAsyncContextManager[object]:
        """Single flight for ``key`` across everyone sharing this store."""
        ...


@contextmanager
def holding(lock: threading.Lock, *, wait: float, what: str) -> Iterator[None]:
    """Hold an in-process ``lock`` for the block, waiting at most ``wait`` seconds.

    Raises:
        StorageError: ``timed out waiting for the <what>`` when the wait ran out.
    """
    if not lock.acquire(timeout=wait):
        raise StorageError(f"timed out waiting for the {what}")
    try:
        yield
    finally:
        lock.release()


@asynccontextmanager
async def aholding(lock: anyio.Lock, *, wait: float, what: str) -> AsyncIterator[None]:
    """Async twin of :func:`holding` (the wait can be cancelled)."""
    with anyio.move_on_after(wait) as waiting:
        await lock.acquire()
    if waiting.cancelled_caught:
        raise StorageError(f"timed out waiting for the {what}")
    try:
        yield
    finally:
        lock.release()


#: Lease of a store's per-connection lock in seconds (Redis, and row locks on
#: PostgreSQL): it must outlast a whole refresh, which the token manager checks.
DEFAULT_LOCK_TIMEOUT = 180.0


def lock_bounds(lock_timeout: float, lock_wait: float | None) -> tuple[float, float]:
    """A shared store lock's validated ``(lease, wait)`` in seconds.

    The lease is how long a holder may keep the lock (a hung worker cannot block
    everyone, and its late writes are refused); the wait is how long a waiter waits
    before :class:`StorageError` (default: the lease + 10 s).

    Raises:
        ValueError: ``lock_timeout`` is not positive.
    """
    if lock_timeout <= 0:
        raise ValueError("lock_timeout must be positive")
    lease = float(lock_timeout)
    return lease, float(lock_wait if lock_wait is not None else lease + 10)


def postgres_lock_settings(lease: float, wait: float) -> tuple[str, str]:
    """``SET LOCAL`` statements bounding a row lock's transaction on PostgreSQL:
    ``lock_timeout`` (the wait) and ``idle_in_transaction_session_timeout`` (the
    lease), in whole milliseconds (``SET`` takes no bind parameters)."""
    return (
        f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}",
        f"SET LOCAL idle_in_transaction_session_timeout = {max(1, int(lease * 1000))}",
    )
