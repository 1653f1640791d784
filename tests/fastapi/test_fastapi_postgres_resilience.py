"""The SQLAlchemy store's row locks on PostgreSQL (asyncpg) against a real lock holder
process that dies or freezes (SECURITY.md item 23).

* Killed: a worker process takes a connection's row lock (``SQLAlchemyTokenStore.lock``,
  the lock the token manager refreshes under) and is killed with SIGKILL while holding
  it. The waiting worker gets the lock as soon as PostgreSQL sees the dead connection
  and makes exactly one refresh; the stored token is the new one and decrypts.
* Frozen: the holder is stopped (SIGSTOP) while holding the lock, as a paused container
  or a host cut off from the network would be. Its lease
  (``idle_in_transaction_session_timeout``) ends its session, the waiting worker makes
  exactly one refresh, and when the holder wakes up its write is refused.

A cancelled holder on PostgreSQL is covered by the lifecycle matrix
(``test_fastapi_lifecycle_matrix.py``, ``cancelled_holder_...``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from support import security_lifecycle as lifecycle

from sfoauth_core.exceptions import SalesforceUnavailableError, StorageError
from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import Fault, SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_fastapi.storage import (
    SFOAuthTables,
    SQLAlchemyTokenStore,
    build_tables,
    create_tables,
    drop_tables,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

KEY = lifecycle.KEY
BOUND = 3.0  # seconds the survivor may wait once the holder is gone

# argv: database URL, table prefix, key, the holder's lease in seconds.
HOLDER_SCRIPT = """
import asyncio, sys
from sqlalchemy.ext.asyncio import create_async_engine
from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token
from sfoauth_fastapi.storage import SQLAlchemyTokenStore, build_tables

async def main():
    url, prefix, key, lease = sys.argv[1:5]
    engine = create_async_engine(url)
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([TokenCipher.generate_key()]),
        tables=build_tables(prefix=prefix), lock_timeout=float(lease),
    )
    late = Token(access_token="00DXX0000001abc!LATE", refresh_token="5Aep-LATE",
                 instance_url="https://acme.my.salesforce.com",
                 org_id="00DXX0000001abcEAA", user_id="005XX000001xyzQAA")
    try:
        async with store.lock(key):
            print("locked", flush=True)
            await asyncio.sleep(1.5)  # stopped or killed here, past any lease
            try:
                await store.save(key, late, expected_version=1)
                print("wrote", flush=True)
            except Exception as exc:
                print("refused", type(exc).__name__, flush=True)
    except Exception as exc:
        print("released with", type(exc).__name__, flush=True)
    await engine.dispose()

asyncio.run(main())
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg is asyncio-only


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    tables: SFOAuthTables
    prefix: str
    cipher: TokenCipher


@pytest.fixture
async def db(postgres_dsn: str) -> AsyncIterator[Database]:
    url = postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    tables = build_tables(prefix=prefix)
    engine = create_async_engine(url)
    await create_tables(engine, tables)
    try:
        yield Database(
            url, engine, tables, prefix, TokenCipher([TokenCipher.generate_key()])
        )
    finally:
        await drop_tables(engine, tables)
        await engine.dispose()


async def lock_waiters(db: Database) -> int:
    """Backends waiting for a lock on our table (a fresh statistics snapshot each)."""
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE :table"
            ),
            {"table": f"%{db.tables.tokens.name}%"},
        )
        return int(result.scalar_one())


async def wait_for_lock_waiter(db: Database) -> None:
    with anyio.fail_after(10):
        while await lock_waiters(db) < 1:
            await anyio.sleep(0.02)


async def start_holder(db: Database, tmp_path: Any, lease: float) -> Process:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_SCRIPT)
    with open(tmp_path / "holder.err", "wb") as err:  # the child keeps its copy
        process = await anyio.open_process(
            [sys.executable, str(script), db.url, db.prefix, KEY, str(lease)],
            stderr=err,
        )
    assert process.stdout is not None
    with anyio.fail_after(30):
        first = await process.stdout.receive()
    if first.strip() != b"locked":
        process.kill()
        await process.wait()
        err = (tmp_path / "holder.err").read_text()[-2000:]
        pytest.fail(f"the holder process did not take the lock: {first!r} {err}")
    return process


async def seed(db: Database, emu: SalesforceEmulator) -> tuple[Any, Token]:
    # The survivor gives up waiting after 10 s (the manager shields the wait from
    # cancellation, so this, not the test's deadline, bounds a failing run).
    store = SQLAlchemyTokenStore(db.engine, db.cipher, tables=db.tables, lock_wait=10)
    manager, _ = lifecycle.manager(emu, store)
    first = Token.from_response(emu.issue_tokens("web"))
    await manager.save(KEY, first, revoke_superseded=False)
    emu.expire_access_tokens()
    return manager, first


async def refresh_behind(
    db: Database, emu: SalesforceEmulator, manager: Any, stale: Token, let_go: Any
) -> tuple[Token, float]:
    """Refresh while the holder has the lock; ``let_go()`` ends the holder. Returns the
    new token and how long the refresh took after ``let_go`` returned."""
    outcome: dict[str, Any] = {}

    async def survivor() -> None:
        outcome["token"] = await manager.refresh(KEY, stale=stale)
        outcome["done"] = time.monotonic()

    with anyio.fail_after(BOUND + 15):
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivor)
            await wait_for_lock_waiter(db)  # queued behind the holder's row lock
            await anyio.sleep(0.3)
            assert "done" not in outcome and emu.calls("refresh_token") == 0
            await let_go()
            released = time.monotonic()
    return outcome["token"], outcome["done"] - released


async def assert_one_refresh_stored(
    db: Database, emu: SalesforceEmulator, first: Token, renewed: Token
) -> None:
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    reader = SQLAlchemyTokenStore(db.engine, db.cipher, tables=db.tables)
    record = await reader.get(KEY)  # decrypts, bound to its key
    assert record is not None and record.version == 3  # marker, token
    assert record.token.access_token == renewed.access_token != first.access_token
    issued = lifecycle.issued_refresh_tokens(emu)[-1]
    assert record.token.refresh_token == issued != first.refresh_token
    async with db.engine.connect() as conn:
        dump = repr((await conn.execute(select(db.tables.tokens))).all())
    for secret in (first.access_token, first.refresh_token, renewed.access_token):
        assert secret and secret not in dump


async def test_killed_lock_holder_frees_the_row_for_exactly_one_refresh(db, tmp_path):
    emu = lifecycle.rotating_emulator()
    manager, first = await seed(db, emu)
    holder = await start_holder(db, tmp_path, lease=180.0)
    async with holder:

        async def kill() -> None:
            os.kill(holder.pid, signal.SIGKILL)

        try:
            renewed, waited = await refresh_behind(db, emu, manager, first, kill)
        finally:
            if holder.returncode is None:
                holder.kill()
            await holder.wait()
    print(f"survivor done {waited:.3f} s after the kill")
    assert waited < BOUND, f"the survivor waited {waited:.2f} s after the kill"
    assert holder.returncode == -signal.SIGKILL
    await assert_one_refresh_stored(db, emu, first, renewed)


async def test_frozen_lock_holder_loses_its_lease_and_cannot_write(db, tmp_path):
    lease = 1.0
    emu = lifecycle.rotating_emulator()
    manager, first = await seed(db, emu)
    holder = await start_holder(db, tmp_path, lease=lease)
    locked = time.monotonic()
    async with holder:

        async def freeze() -> None:
            os.kill(holder.pid, signal.SIGSTOP)

        try:
            renewed, _ = await refresh_behind(db, emu, manager, first, freeze)
            waited = time.monotonic() - locked
            os.kill(holder.pid, signal.SIGCONT)  # it wakes up and tries to write
            assert holder.stdout is not None
            with anyio.fail_after(10):
                said = b""
                async for chunk in holder.stdout:
                    said += chunk
            await holder.wait()
        finally:
            if holder.returncode is None:
                os.kill(holder.pid, signal.SIGKILL)
                await holder.wait()
    print(f"survivor done {waited:.3f} s after the holder locked (lease {lease} s)")
    assert lease * 0.9 < waited < lease + BOUND, waited
    assert b"refused StorageError" in said, said
    assert b"wrote" not in said
    await assert_one_refresh_stored(db, emu, first, renewed)


async def test_terminated_sessions_mid_refresh_replay_nothing(db):
    """Issue 13: every session of the database is terminated (``pg_terminate_backend``)
    while a worker's refresh is at Salesforce. Its marker was committed before the
    request left, so a second worker sharing the table presents nothing; the first
    worker's save reconnects and lands the rotated token; nothing is revoked."""
    emu = SalesforceEmulator()
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    one, first = await seed(db, emu)
    two, _ = lifecycle.manager(
        emu, SQLAlchemyTokenStore(db.engine, db.cipher, tables=db.tables)
    )
    emu.inject_fault(
        Fault(kind="latency", seconds=1.0, count=1, grant_type="refresh_token")
    )
    results: dict[str, Any] = {}

    async def holder() -> None:
        results["one"] = await one.refresh(KEY, stale=first)

    async def terminate_then_other() -> None:
        with anyio.fail_after(10):  # the marker is committed before the request
            while (await two.record(KEY)).refresh_digest is None:
                await anyio.sleep(0.02)
        async with db.engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            await conn.commit()
        try:
            results["two"] = await two.refresh(KEY, stale=first)
        except SalesforceUnavailableError as exc:  # the holder was not done yet
            results["two_error"] = exc
        except StorageError as exc:  # its pooled connection was one of those ended
            results["two_error"] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        tg.start_soon(terminate_then_other)
    renewed = results["one"]
    assert results.get("two", renewed) == renewed
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
    record = await two.record(KEY)
    assert record is not None and not record.needs_reauth
    assert record.token == renewed and record.refresh_digest is None
