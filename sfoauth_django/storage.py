"""``DjangoTokenStore`` / ``AsyncDjangoTokenStore``: the core store protocols over the ORM.

Single flight across processes comes from the database: :meth:`DjangoTokenStore.lock`
opens a transaction and takes the connection's row with ``SELECT ... FOR UPDATE``, so a
second worker holding the same expired token waits, then re-reads the refreshed row and
makes no call. On PostgreSQL the lock has a lease: ``idle_in_transaction_session_timeout``
cuts off a holder that hangs (a frozen worker, a host gone from the network) so that its
row frees and its late writes fail, ``lock_timeout`` bounds how long a waiter waits, and a
key with no row yet (a first mint) is locked by name with a transaction-scoped advisory
lock. Writes are compare-and-swap on ``version`` (:func:`~sfoauth_core.storage.next_record`).
On SQLite, which has no row locks, the lock is only as good as SQLite's database lock; use
PostgreSQL (or MySQL/Oracle) when several workers share tokens.

The async store runs the sync one in threads. Everything inside ``async with store.lock(key)``
runs on one dedicated thread, so the reads and writes of the critical section use the
connection (and transaction) that holds the row lock.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import hashlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import anyio
from asgiref.sync import sync_to_async
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone as django_timezone

from sfoauth_core.exceptions import MalformedResponseError, StorageError
from sfoauth_core.login import LoginError, LoginErrorCode, PendingLogin
from sfoauth_core.storage import (
    ACTIVE,
    MINTED_GRANTS,
    NEEDS_REAUTH,
    TokenCipher,
    TokenRecord,
    next_record,
)
from sfoauth_core.storage.base import (
    DEFAULT_LOCK_TIMEOUT,
    is_idle,
    lock_bounds,
    marked_record,
    postgres_lock_settings,
)
from sfoauth_core.tokens import Token

from .conf import sfoauth_settings
from .models import (
    NAMED_PREFIX,
    AbstractSalesforceConnection,
    PendingAuthorization,
    get_token_model,
)

__all__ = ["AsyncDjangoTokenStore", "DjangoPendingLoginStore", "DjangoTokenStore"]

T = TypeVar("T")

security_log = logging.getLogger("sfoauth.security")

#: Columns a status change writes, and a "refresh in flight" marker.
_MARKER_FIELDS = ["version", "refresh_started_at", "refresh_digest", "updated_at"]
_STATUS_FIELDS = ["status", "reason", *_MARKER_FIELDS]

#: ``reason`` of a connection whose stored token cannot be decrypted.
UNREADABLE_REASON = (
    "stored token unreadable: tampered, moved or encrypted with a removed key"
)


class DjangoTokenStore:
    """A :class:`~sfoauth_core.storage.TokenStore` over the connection model.

    Args:
        model: the connection model (default: :func:`~sfoauth_django.models.get_token_model`).
        cipher: the token cipher (default: from ``SFOAUTH["TOKEN_KEYS"]``).
        using: the database alias (default: the router's choice for writes).

    Example:
        >>> manager = TokenManager(SalesforceOAuth(app), DjangoTokenStore())
    """

    def __init__(
        self,
        *,
        model: type[AbstractSalesforceConnection] | None = None,
        cipher: TokenCipher | None = None,
        using: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float | None = None,
    ) -> None:
        self._model = model
        self._cipher = cipher
        self._using = using
        # The lease (a holder idle in its transaction longer is disconnected by the
        # server; the token manager checks that a refresh fits) and the wait.
        self.lock_timeout, self.lock_wait = lock_bounds(lock_timeout, lock_wait)

    def __repr__(self) -> str:
        return (
            f"DjangoTokenStore(model={self.model._meta.label!r}, using={self.using!r})"
        )

    @property
    def model(self) -> type[AbstractSalesforceConnection]:
        return self._model or get_token_model()

    @property
    def cipher(self) -> TokenCipher:
        return self._cipher or sfoauth_settings.cipher()

    @property
    def using(self) -> str:
        return self._using or router.db_for_write(self.model)

    def _rows(self) -> Any:
        return self.model._default_manager.using(self.using)

    def _record(self, row: AbstractSalesforceConnection | None) -> TokenRecord | None:
        if row is None:
            return None
        try:
            record = row.to_record(self.cipher)
        except (StorageError, MalformedResponseError, ValueError):
            return self._unreadable(row)
        if (
            record is not None
            and record.needs_reauth
            and record.reason == UNREADABLE_REASON
        ):
            return self._readable_again(row, record)
        return record

    def _readable_again(
        self, row: AbstractSalesforceConnection, record: TokenRecord
    ) -> TokenRecord:
        """A row flagged unreadable that decrypts now: the key that made it is back in
        ``TOKEN_KEYS`` (a deploy with a wrong key, then fixed). AES-GCM with the row's
        associated data proves it authentic, so the flag no longer holds: the connection
        is active again, and nobody has to reconnect because of an operator's slip."""
        restored = (
            self._rows()
            .filter(
                pk=row.pk,
                version=record.version,
                status=NEEDS_REAUTH,
                reason=UNREADABLE_REASON,
            )
            .update(status=ACTIVE, reason="", version=F("version") + 1)
        )
        if not restored:  # someone else wrote meanwhile: theirs is the truth
            latest = self._record(self._rows().filter(pk=row.pk).first())
            return latest if latest is not None else record
        security_log.warning(
            "stored token of connection %r can be decrypted again (its key is back); "
            "the connection is active again",
            row.key,
        )
        from . import _runtime  # late: _runtime builds stores

        _runtime.forget(row.key)
        if row.user_id is not None:
            _runtime.forget_user(row.user_id)
        return replace(record, status=ACTIVE, reason="", version=record.version + 1)

    def _unreadable(self, row: AbstractSalesforceConnection) -> TokenRecord:
        """A row whose token cannot be decrypted: flagged, logged, never a 500.

        Tampered, copied onto another connection, or encrypted with a key that was
        removed from ``TOKEN_KEYS`` (issue 13 defect 7). The row is kept (re-encrypting
        with the right key, or a new login, repairs it) and answers as ``needs_reauth``
        with :data:`UNREADABLE_REASON`, so ``request.salesforce`` is falsy and decorated
        views send the user to reconnect. The token it carries is empty.
        """
        if row.status != NEEDS_REAUTH or row.reason != UNREADABLE_REASON:
            security_log.warning(
                "stored token of connection %r cannot be decrypted (tampered, moved or "
                "encrypted with a removed key); flagged for re-authorization",
                row.key,
            )
            self._rows().filter(pk=row.pk).update(
                status=NEEDS_REAUTH, reason=UNREADABLE_REASON
            )
            from . import _runtime  # late: _runtime builds stores

            # This process's caches must not keep answering "connected".
            _runtime.forget(row.key)
            if row.user_id is not None:
                _runtime.forget_user(row.user_id)
        return TokenRecord(
            token=Token(access_token=""),
            version=int(row.version),
            grant=row.grant,
            username=row.username or None,
            status=NEEDS_REAUTH,
            reason=UNREADABLE_REASON,
            updated_at=row.updated_at.timestamp() if row.updated_at else 0.0,
            refreshed_at=row.refreshed_at.timestamp() if row.refreshed_at else None,
        )

    def _locked_row(self, key: str) -> AbstractSalesforceConnection | None:
        row: AbstractSalesforceConnection | None = (
            self._rows().select_for_update().filter(key=key).first()
        )
        return row

    def _take_lock(self, key: str) -> None:
        """Inside the lock's transaction: lease, bounded wait, then the row (or the
        key's name when there is no row yet)."""
        db = connections[self.using]
        postgres = db.vendor == "postgresql"
        try:
            if postgres:
                with db.cursor() as cursor:
                    for statement in postgres_lock_settings(
                        self.lock_timeout, self.lock_wait
                    ):
                        cursor.execute(statement)
            if self._locked_row(key) is None and postgres:
                with db.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        [f"{self.model._meta.db_table}:{key}"],
                    )
        except DatabaseError as exc:
            raise StorageError(
                f"could not take the token lock of {key!r} ({type(exc).__name__})"
            ) from exc

    # The TokenStore protocol ------------------------------------------------------------
    def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None`` (also before the first token is saved).

        A connection the database dropped (a restart, ``pg_terminate_backend``) is
        replaced and the read tried once more when no transaction is open; any other
        database failure is a :class:`StorageError`, never a raw driver error.
        """
        for attempt in (1, 2):
            try:
                return self._record(self._rows().filter(key=key).first())
            except DatabaseError as exc:
                if attempt == 1 and self._replaced_dropped_connection():
                    continue
                raise StorageError(
                    f"could not read the token of {key!r} ({type(exc).__name__})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _replaced_dropped_connection(self) -> bool:
        """After a database error outside a transaction: if the server dropped the
        connection (a restart, ``pg_terminate_backend``), close it so that the next
        query opens a new one, and say so (the caller may try once more)."""
        db = connections[self.using]
        if db.in_atomic_block or db.connection is None or db.is_usable():
            return False
        db.close()
        return True

    def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Encrypt and store ``token``; compare-and-swap on ``expected_version``.

        Raises:
            VersionConflictError: the row changed since the writer read it.
            StorageError: the database failed.
        """
        for attempt in (1, 2):
            try:
                with transaction.atomic(using=self.using):
                    row = self._locked_row(key)
                    record = next_record(
                        key,
                        self._record(row),
                        token=token,
                        grant=grant,
                        username=username,
                        expected_version=expected_version,
                    )
                    if row is None:
                        row = self.model(key=key)
                        if key.startswith(NAMED_PREFIX):
                            row.name = key[len(NAMED_PREFIX) :]
                    row.apply_record(record, self.cipher)
                    row.save(using=self.using)
                    return record
            except IntegrityError:
                # Two first saves raced to insert the row; the second one now updates it.
                if attempt == 2:
                    raise StorageError(
                        f"could not store the token of {key!r}"
                    ) from None
            except DatabaseError as exc:
                # A dropped connection (the session was terminated while a refresh was
                # at Salesforce) is replaced and the write tried once more: the rotated
                # token must land (compare-and-swap keeps it safe).
                if attempt == 1 and self._replaced_dropped_connection():
                    continue
                raise StorageError(
                    f"could not store the token of {key!r} ({type(exc).__name__})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login; the row and its token stay."""
        try:
            with transaction.atomic(using=self.using):
                row = self._locked_row(key)
                record = next_record(
                    key,
                    self._record(row),
                    reason=reason,
                    expected_version=expected_version,
                )
                row = cast("AbstractSalesforceConnection", row)  # next_record raised
                row.version = record.version
                row.status = record.status
                row.reason = record.reason
                row.apply_marker(record)
                row.save(using=self.using, update_fields=_STATUS_FIELDS)
                return record
        except DatabaseError as exc:
            raise StorageError(
                f"could not flag the connection {key!r} ({type(exc).__name__})"
            ) from None

    def delete(self, key: str) -> None:
        """Remove the connection row (its tokens with it). Missing keys are ignored."""
        self._rows().filter(key=key).delete()

    def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write (or clear, ``digest=None``) the "refresh in flight" marker columns;
        compare-and-swap on ``expected_version`` (see
        :func:`~sfoauth_core.storage.base.marked_record`).

        Inside :meth:`lock` the write belongs to the lock's transaction: it is durable
        once the ``with store.lock(key)`` block has exited. The token manager writes its
        marker inside the lock and leaves the block before it calls Salesforce.

        Raises:
            VersionConflictError: the row changed since the writer read it.
            StorageError: the database failed.
        """
        for attempt in (1, 2):
            try:
                with transaction.atomic(using=self.using):
                    row = self._locked_row(key)
                    record = marked_record(
                        key,
                        self._record(row),
                        digest,
                        expected_version=expected_version,
                    )
                    row = cast("AbstractSalesforceConnection", row)  # or it raised
                    row.version = record.version
                    row.apply_marker(record)
                    row.save(using=self.using, update_fields=_MARKER_FIELDS)
                    return record
            except DatabaseError as exc:
                if attempt == 1 and self._replaced_dropped_connection():
                    continue
                raise StorageError(
                    f"could not mark the refresh of {key!r} ({type(exc).__name__})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def idle_keys(
        self, *, idle_since: float, limit: int | None = None, batch_size: int = 500
    ) -> list[str]:
        """Keys of active connections with a refresh token whose refresh token was last
        issued or used before ``idle_since`` (``refreshed_at``, or ``updated_at`` for
        rows saved before that column existed); oldest first, at most ``limit`` (see
        :func:`~sfoauth_core.storage.base.idle_order`).

        The database picks the candidates; whether a token has a refresh token is only
        known after decrypting it, which is done for the candidates alone.

        Raises:
            StorageError: the database failed.
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        keys: list[str] = []
        if limit == 0:
            return keys
        rows = (
            self._rows()
            .filter(status=ACTIVE)
            .exclude(grant__in=MINTED_GRANTS)
            .exclude(token_ciphertext="")
            .annotate(_idle=Coalesce("refreshed_at", "updated_at"))
            .filter(_idle__lt=datetime.fromtimestamp(idle_since, tz=timezone.utc))
            .order_by("_idle", "key")
        )
        try:
            for row in rows.iterator(chunk_size=batch_size):
                record = self._record(row)
                if record is not None and is_idle(record, idle_since):
                    keys.append(row.key)
                    if limit is not None and len(keys) >= limit:
                        break
        except DatabaseError as exc:
            raise StorageError(
                f"could not list idle connections ({type(exc).__name__})"
            ) from None
        return keys

    @contextmanager
    def lock(self, key: str) -> Iterator[object]:
        """Hold ``key``'s row lock (``SELECT ... FOR UPDATE``) for the block.

        The block's writes commit even when it raises one of our errors (a connection
        flagged for re-authorization must stay flagged); a database error rolls back.

        Raises:
            StorageError: the lock was not free within ``lock_wait``, the lease ran out
                (PostgreSQL), or the database failed.
        """
        error: BaseException | None = None
        try:
            with transaction.atomic(using=self.using):
                self._take_lock(key)
                try:
                    yield key
                except DatabaseError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - committed below, re-raised
                    error = exc
        except DatabaseError as exc:
            # Among others: the server ended a holder that outlived its lease; its
            # writes are gone with the transaction. A dropped connection is closed so
            # that the next store call opens a new one.
            self._replaced_dropped_connection()
            raise StorageError(
                f"the token lock of {key!r} was lost ({type(exc).__name__})"
            ) from exc
        if error is not None:
            raise error

    # Maintenance ------------------------------------------------------------------------
    def release_thread(self) -> None:
        """Close the calling thread's database connections: a worker thread that used
        the store (the keep-alive's) is ending."""
        _close_thread_connections()

    def reencrypt(
        self, *, batch_size: int = 100, failed: list[str] | None = None
    ) -> int:
        """Move every row to the first key of ``TOKEN_KEYS``; idempotent and resumable.

        A row that cannot be decrypted (tampered, or made with a removed key) does not stop
        the run: it is flagged like an unreadable row on read, its key is appended to
        ``failed``, and the other rows are re-encrypted.

        Returns:
            How many rows were rewritten.
        """
        cipher = self.cipher
        done = 0
        pks = list(
            self._rows()
            .exclude(token_ciphertext="")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(pks), batch_size):
            with transaction.atomic(using=self.using):
                rows = (
                    self._rows()
                    .select_for_update()
                    .filter(pk__in=pks[start : start + batch_size])
                )
                for row in rows:
                    if not row.token_ciphertext or not cipher.needs_reencrypt(
                        row.token_ciphertext
                    ):
                        continue
                    try:
                        row.token_ciphertext = cipher.reencrypt(
                            row.token_ciphertext, context=row.cipher_context()
                        )
                    except StorageError:
                        self._unreadable(row)
                        if failed is not None:
                            failed.append(row.key)
                        continue
                    row.save(using=self.using, update_fields=["token_ciphertext"])
                    done += 1
        return done


_lock_worker: contextvars.ContextVar[_Worker | None] = contextvars.ContextVar(
    "sfoauth_django_lock_worker", default=None
)


def _close_thread_connections() -> None:
    """Close the calling thread's database connections (the thread is ending).

    Django ignores ``close()`` on an in-memory SQLite database, as closing the only
    connection would drop it. A worker thread's own connection to one (the shared-cache
    test database) is safe to close, the database lives on in the other threads'
    connections, and left to the garbage collector it raises ``ResourceWarning``
    (Python 3.13+). Connections shared between threads get the ordinary ``close()``.
    """
    for conn in connections.all(initialized_only=True):
        if conn.vendor == "sqlite" and not conn.allow_thread_sharing:
            # Imported here: the backend module checks the SQLite version on import.
            from django.db.backends.sqlite3.base import DatabaseWrapper

            if isinstance(conn, DatabaseWrapper) and conn.is_in_memory_db():
                BaseDatabaseWrapper.close(conn)
                continue
        conn.close()


class _Worker:
    """One thread that runs every call of a critical section (one DB connection)."""

    def __init__(self) -> None:
        self._calls: list[tuple[Callable[[], Any], Future[Any]]] = []
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(
            target=self._loop, name="sfoauth-db-lock", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._calls and not self._closed:
                        self._ready.wait()
                    if not self._calls:
                        return
                    fn, future = self._calls.pop(0)
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # noqa: BLE001 - to the waiting caller
                        future.set_exception(exc)
        finally:
            _close_thread_connections()

    async def run(self, fn: Callable[[], T]) -> T:
        future: Future[T] = Future()
        with self._ready:
            self._calls.append((fn, future))
            self._ready.notify()
        return await anyio.to_thread.run_sync(future.result)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()


class AsyncDjangoTokenStore:
    """The :class:`~sfoauth_core.storage.AsyncTokenStore` twin of :class:`DjangoTokenStore`.

    Args:
        store: the sync store to run (default: a new :class:`DjangoTokenStore`).
    """

    def __init__(self, store: DjangoTokenStore | None = None) -> None:
        self.sync = store or DjangoTokenStore()

    @property
    def lock_timeout(self) -> float:
        """The sync store's lease (seconds)."""
        return self.sync.lock_timeout

    def __repr__(self) -> str:
        return f"AsyncDjangoTokenStore({self.sync!r})"

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        worker = _lock_worker.get()
        if worker is not None:
            return await worker.run(lambda: fn(*args, **kwargs))
        return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)

    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        return await self._call(self.sync.get, key)

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
        return await self._call(
            self.sync.save,
            key,
            token,
            grant=grant,
            username=username,
            expected_version=expected_version,
        )

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login; the row and its token stay."""
        return await self._call(
            self.sync.mark_needs_reauth, key, reason, expected_version=expected_version
        )

    async def delete(self, key: str) -> None:
        """Remove the connection row. Missing keys are ignored."""
        await self._call(self.sync.delete, key)

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write or clear the "refresh in flight" marker (see
        :meth:`DjangoTokenStore.set_refresh_marker`)."""
        return await self._call(
            self.sync.set_refresh_marker,
            key,
            digest,
            expected_version=expected_version,
        )

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None, batch_size: int = 500
    ) -> list[str]:
        """Keys of idle connections (see :meth:`DjangoTokenStore.idle_keys`)."""
        return await self._call(
            self.sync.idle_keys,
            idle_since=idle_since,
            limit=limit,
            batch_size=batch_size,
        )

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[object]:
        """Hold ``key``'s row lock; the block's store calls share its transaction."""
        worker = _Worker()
        manager = self.sync.lock(key)
        try:
            await worker.run(manager.__enter__)
            bound = _lock_worker.set(worker)
            try:
                yield key
            except BaseException as exc:
                _lock_worker.reset(bound)
                leave = functools.partial(
                    manager.__exit__, type(exc), exc, exc.__traceback__
                )
                with anyio.CancelScope(shield=True):
                    await worker.run(leave)
                raise
            _lock_worker.reset(bound)
            with anyio.CancelScope(shield=True):
                await worker.run(lambda: manager.__exit__(None, None, None))
        finally:
            worker.close()


class DjangoPendingLoginStore:
    """The core's :class:`~sfoauth_core.login.PendingLoginStore` over
    :class:`~sfoauth_django.models.PendingAuthorization` rows, bound to one browser
    session.

    Each row is keyed by the login id (a hash of ``state``), holds the record encrypted
    with the token cipher (bound to that id) and the hash of the session's binding: a
    callback from another browser session is refused *without* consuming the login, so
    the victim can still finish theirs. ``take`` deletes the row before anything else
    happens, so of two racing callbacks only one gets it. Expired rows are purged as new
    logins start.

    Args:
        cipher: the token cipher.
        binding: the session's random binding value (never stored in clear).
    """

    def __init__(self, cipher: TokenCipher, *, binding: str) -> None:
        self.cipher = cipher
        self._binding_hash = hashlib.sha256(binding.encode()).hexdigest()

    def __repr__(self) -> str:
        return "DjangoPendingLoginStore()"

    def put(self, login_id: str, pending: PendingLogin) -> None:
        """Store the encrypted record (and purge expired ones)."""
        now = django_timezone.now()
        PendingAuthorization.objects.filter(expires_at__lt=now).delete()
        PendingAuthorization.objects.create(
            state_hash=login_id,
            binding_hash=self._binding_hash,
            payload=pending.seal(self.cipher, login_id),
            expires_at=datetime.fromtimestamp(pending.expires_at, tz=timezone.utc),
        )

    def take(self, login_id: str) -> PendingLogin | None:
        """Consume the login: ``None`` if unknown or used.

        Raises:
            LoginError: ``INVALID_STATE`` when the login belongs to another browser
                session (left in place), lost a race, or cannot be read.
        """
        rows = PendingAuthorization.objects
        row = rows.filter(state_hash=login_id).first()
        if row is None:
            return None
        if not hmac.compare_digest(row.binding_hash, self._binding_hash):
            raise LoginError(
                LoginErrorCode.INVALID_STATE,
                "state belongs to another browser session",
                step="callback",
            )
        deleted, _ = rows.filter(
            state_hash=login_id, binding_hash=row.binding_hash
        ).delete()
        if deleted != 1:
            raise LoginError(
                LoginErrorCode.INVALID_STATE,
                "state used by a concurrent callback",
                step="callback",
            )
        try:
            pending = PendingLogin.unseal(self.cipher, login_id, row.payload)
        except StorageError:
            raise LoginError(
                LoginErrorCode.INVALID_STATE,
                "pending login record unreadable",
                step="callback",
            ) from None
        # The row's expiry is the database's word (an operator may shorten it).
        expires_at = min(pending.expires_at, row.expires_at.timestamp())
        return dataclasses.replace(pending, expires_at=expires_at)
