"""SQLAlchemy 2.x (async) stores: tokens and pending flows, encrypted, with row locks.

Tables (names take a prefix, default ``sfoauth_``), on an Alembic-ready
:data:`metadata` (with a naming convention, so autogenerate gives stable names):

* ``sfoauth_tokens`` — one row per connection key: ``version`` (the compare-and-swap
  fence, in clear), ``record`` (the whole :class:`~sfoauth_core.storage.TokenRecord`,
  encrypted by :class:`~sfoauth_core.storage.TokenCipher` with the key as associated
  data, so a ciphertext moved to another row fails), and non-secret columns for
  operators: ``org_id``, ``user_id``, ``status``, ``updated_at`` and ``refreshed_at``
  (when the refresh token was last issued or used: :meth:`SQLAlchemyTokenStore.idle_keys`
  queries it). The "refresh in flight" marker lives inside the encrypted record;
* ``sfoauth_pending_flows`` — login flows waiting for their callback (encrypted).

Single flight on PostgreSQL: :meth:`SQLAlchemyTokenStore.lock` opens a transaction and
takes ``SELECT ... FOR UPDATE`` on the connection's row (a transaction-scoped advisory
lock when the row does not exist yet), with ``lock_timeout`` bounding the wait and
``idle_in_transaction_session_timeout`` as the lease: a holder that hangs is cut off by
the server, one that dies releases with its connection. Reads and writes made inside
the block by the same task use that transaction; the write commits it, so the rotated
token is durable at the moment the lock is released. Other databases (SQLite through
aiosqlite by default) get a per-key in-process lock: one process only.

Every write is compare-and-swap on ``version`` (see
:func:`~sfoauth_core.storage.next_record`), so a holder fenced off by its lease cannot
overwrite a newer token. Database errors surface as
:class:`~sfoauth_core.exceptions.StorageError` without SQL or parameters.

Example:
    >>> engine = create_async_engine("postgresql+asyncpg://app@db/app")
    >>> await create_tables(engine)
    >>> store = SQLAlchemyTokenStore(engine, TokenCipher([key]))
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple

import anyio
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlalchemy.schema import CreateColumn

from sfoauth_core.exceptions import StorageError
from sfoauth_core.storage.base import (
    ACTIVE,
    DEFAULT_LOCK_TIMEOUT,
    TokenRecord,
    VersionConflictError,
    aholding,
    is_idle,
    lock_bounds,
    marked_record,
    next_record,
    postgres_lock_settings,
    record_from_bytes,
    record_to_bytes,
)
from sfoauth_core.storage.cipher import TokenCipher
from sfoauth_core.tokens import Token

from .state import DEFAULT_FLOW_TTL, PendingFlow

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "SFOAuthTables",
    "SQLAlchemyPendingFlowStore",
    "SQLAlchemyTokenStore",
    "build_tables",
    "create_tables",
    "drop_tables",
    "metadata",
    "tables",
]

_MAX_CAS_ATTEMPTS = 16
_SWEEP_EVERY = 32

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: The metadata holding the default tables; point Alembic's ``target_metadata`` here.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SFOAuthTables(NamedTuple):
    """The two tables sfoauth uses."""

    tokens: Table
    pending_flows: Table


def build_tables(
    target: MetaData | None = None, *, prefix: str = "sfoauth_"
) -> SFOAuthTables:
    """Define the token and pending-flow tables on ``target`` with a name ``prefix``.

    Use it to add sfoauth's tables to your own metadata (one Alembic history), or to
    run several isolated stores in one database.
    """
    target = (
        target if target is not None else MetaData(naming_convention=NAMING_CONVENTION)
    )
    tokens = Table(
        f"{prefix}tokens",
        target,
        Column("key", String(255), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("record", Text, nullable=False),
        Column("org_id", String(18), nullable=True, index=True),
        Column("user_id", String(18), nullable=True),
        Column("status", String(16), nullable=False, default="active"),
        Column("updated_at", Float, nullable=False, default=0.0),
        # Tables created before this column existed get it from `create_tables` (or
        # the ALTER TABLE in docs/fastapi.md, "Upgrading the tables").
        Column("refreshed_at", Float, nullable=True),
    )
    pending = Table(
        f"{prefix}pending_flows",
        target,
        Column("flow_id", String(64), primary_key=True),
        Column("data", Text, nullable=False),
        Column("expires_at", Float, nullable=False, index=True),
    )
    return SFOAuthTables(tokens, pending)


#: The default tables (``sfoauth_tokens``, ``sfoauth_pending_flows``) on
#: :data:`metadata`.
tables = build_tables(metadata)


async def create_tables(engine: AsyncEngine, which: SFOAuthTables = tables) -> None:
    """Create the tables if missing, and add columns that later versions added to
    tables created earlier (for apps without migrations, and tests)."""

    def create(sync: Connection) -> None:
        which.tokens.metadata.create_all(sync, tables=list(which))
        _add_missing_columns(sync, which)

    async with engine.begin() as conn:
        await conn.run_sync(create)


def _add_missing_columns(sync: Connection, which: SFOAuthTables) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each nullable column a table lacks (columns
    added since it was created, e.g. ``refreshed_at``); nothing else is altered."""
    inspector = inspect(sync)
    for table in which:
        present = {
            column["name"]
            for column in inspector.get_columns(table.name, schema=table.schema)
        }
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            name = sync.dialect.identifier_preparer.format_table(table)
            ddl = CreateColumn(column).compile(dialect=sync.dialect)
            sync.execute(text(f"ALTER TABLE {name} ADD COLUMN {ddl}"))


async def drop_tables(engine: AsyncEngine, which: SFOAuthTables = tables) -> None:
    """Drop the tables (tests)."""
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync: which.tokens.metadata.drop_all(sync, tables=list(which))
        )


_MISSING_TABLE = (
    "no such table",  # SQLite
    "undefinedtable",  # asyncpg's UndefinedTableError
    "does not exist",  # PostgreSQL: relation "..." does not exist
    "doesn't exist",  # MySQL
)


_MISSING_COLUMN = (
    "no such column",  # SQLite
    "has no column named",  # SQLite, on INSERT
    "undefinedcolumn",  # asyncpg's UndefinedColumnError
    "unknown column",  # MySQL
)


def _db_error(exc: Exception, doing: str, table: str | None = None) -> StorageError:
    """A :class:`StorageError` naming the cause an operator can act on.

    SQLAlchemy's own message quotes the statement and its parameters (ciphertexts,
    keys): it is kept out. A missing table says so and how to create it; anything
    else names the driver's exception class.
    """
    orig = getattr(exc, "orig", None) or exc.__cause__
    cause = f"{type(orig).__name__} " if orig is not None else ""
    cause += f"{type(exc).__name__}"
    if table is not None and orig is not None:
        text = f"{type(orig).__name__} {orig}".lower()
        if any(marker in text for marker in _MISSING_COLUMN) or (
            "column" in text and "does not exist" in text  # PostgreSQL
        ):
            return StorageError(
                f"database failed while {doing}: table {table!r} lacks a column this "
                "version uses; add it with `await create_tables(engine)` (adds "
                "missing columns), `SQLAlchemyTokenStore(..., create_tables=True)` or "
                'the ALTER TABLE in docs/fastapi.md ("Upgrading the tables")'
            )
        if any(marker in text for marker in _MISSING_TABLE) and table in text:
            return StorageError(
                f"database failed while {doing}: table {table!r} does not exist; "
                "create it with `await create_tables(engine)`, "
                "`SQLAlchemyTokenStore(..., create_tables=True)` (run by "
                "`sf.lifespan`) or your migrations"
            )
    return StorageError(f"database failed while {doing} ({cause})")


@dataclass(slots=True)
class _Held:
    store: SQLAlchemyTokenStore
    key: str
    conn: AsyncConnection
    tx: AsyncTransaction
    released: bool = False


_HELD: ContextVar[_Held | None] = ContextVar("sfoauth_sqlalchemy_lock", default=None)


class _RetryError(Exception):
    pass


class SQLAlchemyTokenStore:
    """An :class:`~sfoauth_core.storage.AsyncTokenStore` on SQLAlchemy 2.x (async).

    Args:
        engine: an ``AsyncEngine`` (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``
            or ``postgresql+psycopg://``).
        cipher: encrypts every record (required: the table never sees a plaintext
            token).
        tables: from :func:`build_tables` (default: :data:`tables`).
        lock_timeout: lease of a row lock in seconds (PostgreSQL); a hung holder's
            transaction is ended by the server after this long idle.
        lock_wait: seconds to wait for a lock before :class:`StorageError` (default:
            ``lock_timeout`` + 10).
        create_tables: create the tables (if missing) in :meth:`setup`, which
            ``SFOAuth.lifespan`` runs at start-up; for apps without migrations.

    Example:
        >>> store = SQLAlchemyTokenStore(engine, TokenCipher([key]))
        >>> sf = SFOAuth(app, store=store, secret_key=...)
    """

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: TokenCipher,
        *,
        tables: SFOAuthTables = tables,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float | None = None,
        create_tables: bool = False,
    ) -> None:
        if not isinstance(cipher, TokenCipher):
            raise TypeError("cipher must be a TokenCipher (the table keeps ciphertext)")
        self.engine = engine
        self.cipher = cipher
        self.tables = tables
        self.lock_timeout, self.lock_wait = lock_bounds(lock_timeout, lock_wait)
        self.row_locks = engine.dialect.name == "postgresql"
        self.create_tables = create_tables
        self._local_locks: dict[str, anyio.Lock] = {}

    async def setup(self) -> None:
        """Start-up work (``SFOAuth.lifespan`` calls it): create the tables when the
        store was built with ``create_tables=True``.

        Raises:
            StorageError: the database failed (the cause is named, never the SQL).
        """
        if not self.create_tables:
            return
        try:
            await create_tables(self.engine, self.tables)
        except SQLAlchemyError as exc:
            raise _db_error(exc, "creating the tables") from exc

    def __repr__(self) -> str:
        return (
            f"SQLAlchemyTokenStore(table={self.tables.tokens.name!r}, "
            f"dialect={self.engine.dialect.name!r}, cipher={self.cipher!r})"
        )

    # Encoding -------------------------------------------------------------------------
    def _decode(self, key: str, row: Any) -> TokenRecord | None:
        if row is None:
            return None
        record = record_from_bytes(self.cipher.decrypt(row.record, context=key))
        if record.version != row.version:
            raise StorageError(f"token record {key!r} has a mismatched version")
        return record

    def _values(self, key: str, record: TokenRecord) -> dict[str, Any]:
        return {
            "version": record.version,
            "record": self.cipher.encrypt(record_to_bytes(record), context=key),
            "org_id": record.token.org_id,
            "user_id": record.token.user_id,
            "status": record.status,
            "updated_at": record.updated_at,
            "refreshed_at": record.refreshed_at,
        }

    def _holding(self, key: str) -> _Held | None:
        held = _HELD.get()
        if held is not None and held.store is self and held.key == key:
            return None if held.released else held
        return None

    async def _read(self, conn: AsyncConnection, key: str) -> Any:
        t = self.tables.tokens
        result = await conn.execute(
            select(t.c.version, t.c.record).where(t.c.key == key)
        )
        return result.first()

    async def unknown_key_ids(self) -> dict[str, int]:
        """Key ids that stored records use but the cipher lacks, with their counts.

        Such records cannot be decrypted: the key was removed from the cipher's keys
        before they were re-encrypted (issue 13 defect 9). Ids are fingerprints, never
        key material.

        Raises:
            StorageError: the database failed.
        """
        t = self.tables.tokens
        known = set(self.cipher.key_ids)
        missing: dict[str, int] = {}
        try:
            async with self.engine.connect() as conn:
                result = await conn.stream(select(t.c.record))
                async for (ciphertext,) in result:
                    try:
                        kid = self.cipher.key_id_of(ciphertext)
                    except StorageError:
                        kid = "(not a sfoauth ciphertext)"
                    if kid not in known:
                        missing[kid] = missing.get(kid, 0) + 1
        except SQLAlchemyError as exc:
            raise _db_error(exc, "scanning the token table") from None
        return missing

    # Reads ----------------------------------------------------------------------------
    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, decrypted, or ``None``."""
        held = self._holding(key)
        try:
            if held is not None:
                row = await self._read(held.conn, key)
            else:
                async with self.engine.connect() as conn:
                    row = await self._read(conn, key)
        except SQLAlchemyError as exc:
            raise _db_error(exc, "reading a token", self.tables.tokens.name) from exc
        return self._decode(key, row)

    # Writes ---------------------------------------------------------------------------
    async def _write(
        self,
        conn: AsyncConnection,
        key: str,
        nested: bool,
        change: Callable[[TokenRecord | None], TokenRecord],
        expected: int | None,
    ) -> TokenRecord:
        t = self.tables.tokens
        row = await self._read(conn, key)
        record = change(self._decode(key, row))
        values = self._values(key, record)
        if row is None:
            try:
                if nested:
                    async with conn.begin_nested():
                        await conn.execute(insert(t).values(key=key, **values))
                else:
                    await conn.execute(insert(t).values(key=key, **values))
            except IntegrityError:
                if expected is not None:
                    raise VersionConflictError(key, expected, None) from None
                raise _RetryError from None
            return record
        result = await conn.execute(
            update(t).where(t.c.key == key, t.c.version == row.version).values(**values)
        )
        if result.rowcount != 1:
            if expected is not None:
                raise VersionConflictError(key, expected, None)
            raise _RetryError
        return record

    async def _apply(self, key: str, **change: Any) -> TokenRecord:
        return await self._change(
            key,
            lambda current: next_record(key, current, **change),
            change.get("expected_version"),
        )

    async def _change(
        self,
        key: str,
        change: Callable[[TokenRecord | None], TokenRecord],
        expected: int | None,
    ) -> TokenRecord:
        held = self._holding(key)
        try:
            if held is not None:
                record = await self._write(held.conn, key, True, change, expected)
                # Commit now: the new (possibly rotated) token is durable at the moment
                # the row lock is released, and nothing after it needs the lock.
                held.released = True
                await held.tx.commit()
                return record
            for _ in range(_MAX_CAS_ATTEMPTS):
                try:
                    async with self.engine.begin() as conn:
                        return await self._write(conn, key, False, change, expected)
                except _RetryError:
                    continue
                except IntegrityError:
                    continue
        except _RetryError:
            raise StorageError(
                f"token record {key!r} changed during a locked write"
            ) from None
        except SQLAlchemyError as exc:
            raise _db_error(exc, "writing a token", self.tables.tokens.name) from exc
        raise StorageError(f"token record {key!r} is changing too fast to write")

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
        return await self._apply(
            key,
            token=token,
            grant=grant,
            username=username,
            expected_version=expected_version,
        )

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping its (encrypted) row."""
        return await self._apply(key, reason=reason, expected_version=expected_version)

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write (or clear, ``digest=None``) the "refresh in flight" marker inside the
        encrypted record; compare-and-swap (see
        :func:`~sfoauth_core.storage.base.marked_record`). Inside :meth:`lock` the
        write commits at once and ends the lock, like every write there."""
        return await self._change(
            key,
            lambda current: marked_record(
                key, current, digest, expected_version=expected_version
            ),
            expected_version,
        )

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None, batch_size: int = 500
    ) -> list[str]:
        """Keys of active connections with a refresh token whose refresh token was last
        issued or used before ``idle_since`` (the ``refreshed_at`` column, or
        ``updated_at`` for rows written before it existed); oldest first, at most
        ``limit`` (see :func:`~sfoauth_core.storage.base.idle_order`).

        The database picks the candidates by the clear columns; the grant and the
        refresh token are checked on the decrypted record. Unreadable rows are
        skipped.

        Raises:
            StorageError: the database failed.
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        t = self.tables.tokens
        idle = func.coalesce(t.c.refreshed_at, t.c.updated_at)
        query = (
            select(t.c.key, t.c.version, t.c.record)
            .where(t.c.status == ACTIVE, idle < idle_since)
            .order_by(idle, t.c.key)
        )
        keys: list[str] = []
        if limit == 0:
            return keys
        try:
            async with self.engine.connect() as conn:
                result = await conn.stream(
                    query.execution_options(yield_per=batch_size)
                )
                async for row in result:
                    try:
                        record = self._decode(row.key, row)
                    except StorageError:
                        continue
                    if record is not None and is_idle(record, idle_since):
                        keys.append(row.key)
                        if limit is not None and len(keys) >= limit:
                            break
        except SQLAlchemyError as exc:
            raise _db_error(
                exc, "listing idle connections", self.tables.tokens.name
            ) from exc
        return keys

    async def delete(self, key: str) -> None:
        """Remove ``key``'s row (missing keys are ignored)."""
        t = self.tables.tokens
        held = self._holding(key)
        try:
            if held is not None:
                await held.conn.execute(delete(t).where(t.c.key == key))
                held.released = True
                await held.tx.commit()
                return
            async with self.engine.begin() as conn:
                await conn.execute(delete(t).where(t.c.key == key))
        except SQLAlchemyError as exc:
            raise _db_error(exc, "deleting a token", self.tables.tokens.name) from exc

    # Locking --------------------------------------------------------------------------
    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[object]:
        """Single flight for ``key``: a row lock on PostgreSQL, an in-process lock
        elsewhere.

        Raises:
            StorageError: the lock was not free within ``lock_wait``, or the database
                failed.
        """
        if not self.row_locks:
            async with self._local_lock(key):
                yield None
            return
        async with self._row_lock(key) as held:
            yield held

    @asynccontextmanager
    async def _local_lock(self, key: str) -> AsyncIterator[None]:
        lock = self._local_locks.setdefault(key, anyio.Lock())
        async with aholding(lock, wait=self.lock_wait, what=f"token lock of {key!r}"):
            yield

    @asynccontextmanager
    async def _row_lock(self, key: str) -> AsyncIterator[_Held]:
        t = self.tables.tokens
        try:
            conn = await self.engine.connect()
        except SQLAlchemyError as exc:
            raise _db_error(exc, "opening a connection for the lock") from exc
        try:
            try:
                tx = await conn.begin()
                for statement in postgres_lock_settings(
                    self.lock_timeout, self.lock_wait
                ):
                    await conn.execute(text(statement))
                found = await conn.execute(
                    select(t.c.version).where(t.c.key == key).with_for_update()
                )
                if found.first() is None:
                    # No row to lock yet (a first mint): lock the key's name instead.
                    name = literal(f"{t.name}:{key}")
                    await conn.execute(
                        select(
                            func.pg_advisory_xact_lock(
                                func.hashtextextended(name, literal(0))
                            )
                        )
                    )
            except SQLAlchemyError as exc:
                raise _db_error(
                    exc, f"taking the token lock of {key!r}", t.name
                ) from exc
            held = _Held(self, key, conn, tx)
            reset = _HELD.set(held)
            try:
                yield held
            except BaseException:
                held.released = True
                if tx.is_active:
                    await tx.rollback()
                raise
            finally:
                _HELD.reset(reset)
            if tx.is_active:
                try:
                    await tx.commit()
                except SQLAlchemyError as exc:
                    raise _db_error(exc, "releasing the token lock") from exc
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close()

    # Maintenance ----------------------------------------------------------------------
    async def reencrypt_all(self, *, batch_size: int = 500) -> int:
        """Re-encrypt every row under the cipher's first key; return how many changed.

        Idempotent and resumable: rows already under the first key are skipped; each
        rewrite keeps the version and only applies if the row did not change meanwhile.
        """
        t = self.tables.tokens
        changed = 0
        last = ""
        try:
            while True:
                async with self.engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(t.c.key, t.c.version, t.c.record)
                            .where(t.c.key > last)
                            .order_by(t.c.key)
                            .limit(batch_size)
                        )
                    ).all()
                if not rows:
                    return changed
                for row in rows:
                    last = row.key
                    if not self.cipher.needs_reencrypt(row.record):
                        continue
                    new = self.cipher.reencrypt(row.record, context=row.key)
                    async with self.engine.begin() as conn:
                        result = await conn.execute(
                            update(t)
                            .where(t.c.key == row.key, t.c.version == row.version)
                            .values(record=new)
                        )
                    changed += int(result.rowcount == 1)
        except SQLAlchemyError as exc:
            raise _db_error(exc, "re-encrypting tokens") from exc

    def pending_flows(
        self, *, ttl: float = DEFAULT_FLOW_TTL
    ) -> SQLAlchemyPendingFlowStore:
        """A pending-flow store on the same engine, tables and cipher."""
        return SQLAlchemyPendingFlowStore(
            self.engine, self.cipher, tables=self.tables, ttl=ttl
        )


class SQLAlchemyPendingFlowStore:
    """Pending login flows in the database, encrypted; ``take`` is ``DELETE ...
    RETURNING`` (atomic: of two racing callbacks exactly one gets the flow).

    Args:
        engine: the ``AsyncEngine``.
        cipher: encrypts each flow, bound to its id.
        tables: from :func:`build_tables`.
        ttl: seconds a flow is kept; expired rows are swept as new flows arrive.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        cipher: TokenCipher,
        *,
        tables: SFOAuthTables = tables,
        ttl: float = DEFAULT_FLOW_TTL,
    ) -> None:
        self.engine = engine
        self.cipher = cipher
        self.tables = tables
        self.ttl = ttl
        self._puts = 0

    def __repr__(self) -> str:
        return f"SQLAlchemyPendingFlowStore(table={self.tables.pending_flows.name!r})"

    async def put(self, flow_id: str, flow: PendingFlow) -> None:
        """Store the encrypted flow."""
        t = self.tables.pending_flows
        blob = flow.seal(self.cipher, flow_id)
        self._puts += 1
        try:
            async with self.engine.begin() as conn:
                if self._puts % _SWEEP_EVERY == 1:
                    await conn.execute(delete(t).where(t.c.expires_at < time.time()))
                await conn.execute(
                    insert(t).values(
                        flow_id=flow_id, data=blob, expires_at=flow.expires_at
                    )
                )
        except SQLAlchemyError as exc:
            raise _db_error(
                exc, "saving a pending login", self.tables.pending_flows.name
            ) from exc

    async def take(self, flow_id: str) -> PendingFlow | None:
        """Atomically delete and return the flow (``None`` if unknown or used)."""
        t = self.tables.pending_flows
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    delete(t).where(t.c.flow_id == flow_id).returning(t.c.data)
                )
                row = result.first()
        except SQLAlchemyError as exc:
            raise _db_error(
                exc, "reading a pending login", self.tables.pending_flows.name
            ) from exc
        if row is None:
            return None
        return PendingFlow.unseal(self.cipher, flow_id, row.data)
