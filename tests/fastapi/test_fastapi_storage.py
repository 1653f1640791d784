"""SQLAlchemy stores (SQLite and PostgreSQL) and the Redis store behind the router.

Contract of the token store (compare-and-swap, re-auth flag, delete, ciphertext bound
to its row, re-encryption), PostgreSQL row locks (bounded wait, single flight across
engines), and the plaintext sweep of every table and Redis key after a login and a
refresh (SECURITY.md item 17).
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
import pytest
from sqlalchemy import Column, MetaData, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from support import record_contract
from support.fastapi import browser_login, make_api, make_sf

from sfoauth_core.exceptions import StorageError
from sfoauth_core.storage import TokenCipher, VersionConflictError
from sfoauth_core.tokens import Token
from sfoauth_fastapi.storage import (
    SQLAlchemyPendingFlowStore,
    SQLAlchemyTokenStore,
    build_tables,
    create_tables,
    drop_tables,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # SQLAlchemy's async engine and redis.asyncio need asyncio


def token(n: int = 1) -> Token:
    return Token(
        access_token=f"00DXX0000001abc!ACCESS-{n}-{uuid.uuid4().hex}",
        refresh_token=f"5Aep-REFRESH-{n}-{uuid.uuid4().hex}",
        instance_url="https://acme.my.salesforce.com",
        org_id="00DXX0000001abc2AA",
        user_id="005XX000001xyzQYAQ",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Any
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/sfoauth.db"
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    eng = create_async_engine(url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def tables(engine: AsyncEngine) -> AsyncIterator[Any]:
    which = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    await create_tables(engine, which)
    yield which
    await drop_tables(engine, which)


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([TokenCipher.generate_key()])


async def sweep_tables(engine: AsyncEngine, tables: Any) -> str:
    """Every value of every row, as one string."""
    dump: list[str] = []
    async with engine.connect() as conn:
        for table in tables:
            for row in (await conn.execute(select(table))).all():
                dump.extend(str(v) for v in row)
    return " ".join(dump)


async def test_contract(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    assert await store.get("k") is None
    first = await store.save("k", token(1), expected_version=0)
    assert first.version == 1 and (await store.get("k")) == first
    with pytest.raises(VersionConflictError):
        await store.save("k", token(2), expected_version=0)
    second = await store.save("k", token(2), expected_version=1)
    assert second.version == 2
    marked = await store.mark_needs_reauth("k", "invalid_grant", expected_version=2)
    assert marked.needs_reauth and (await store.get("k")).reason == "invalid_grant"
    with pytest.raises(VersionConflictError):
        await store.mark_needs_reauth("missing", "x", expected_version=1)
    dump = await sweep_tables(engine, tables)
    assert (
        second.token.access_token not in dump and second.token.refresh_token not in dump
    )
    assert "00DXX0000001abc2AA" in dump  # ids are not secrets; tokens are
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None
    assert "sfoauth" not in repr(store) or cipher.primary_key_id in repr(store)


async def test_concurrent_unconditional_saves_all_land(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(store.save, "k", token(n))
    assert (await store.get("k")).version == 10


async def test_ciphertext_cannot_move_between_rows(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    await store.save("alice", token(1))
    await store.save("bob", token(2))
    t = tables.tokens
    async with engine.begin() as conn:
        blob = (
            await conn.execute(select(t.c.record).where(t.c.key == "alice"))
        ).scalar()
        await conn.execute(
            update(t).where(t.c.key == "bob").values(record=blob, version=1)
        )
    with pytest.raises(StorageError, match="another record"):
        await store.get("bob")


async def test_reencrypt_all_is_idempotent(engine, tables):
    old_key = TokenCipher.generate_key()
    old = SQLAlchemyTokenStore(engine, TokenCipher([old_key]), tables=tables)
    for n in range(5):
        await old.save(f"k{n}", token(n))
    rotated = TokenCipher([TokenCipher.generate_key(), old_key])
    store = SQLAlchemyTokenStore(engine, rotated, tables=tables)
    assert await store.reencrypt_all(batch_size=2) == 5
    assert await store.reencrypt_all() == 0
    assert (await store.get("k3")).version == 1


async def test_pending_flows_single_use(engine, tables, cipher):
    from sfoauth_fastapi.state import PendingFlow

    flows = SQLAlchemyPendingFlowStore(engine, cipher, tables=tables)
    flow = PendingFlow(state="S" * 43, code_verifier="V" * 64, expires_at=2e9)
    await flows.put("f1", flow)
    assert "VVVV" not in await sweep_tables(engine, tables)
    got: list[Any] = []

    async def take() -> None:
        got.append(await flows.take("f1"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(take)
    assert [g for g in got if g is not None] == [flow]


@pytest.mark.postgres
async def test_row_lock_is_exclusive_and_bounded(postgres_dsn, cipher):
    url = postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    one, two = create_async_engine(url), create_async_engine(url)
    which = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    await create_tables(one, which)
    try:
        a = SQLAlchemyTokenStore(one, cipher, tables=which)
        b = SQLAlchemyTokenStore(two, cipher, tables=which, lock_wait=0.3)
        await a.save("k", token(1))
        async with a.lock("k"):
            with pytest.raises(StorageError, match="lock"):
                async with b.lock("k"):
                    pass  # pragma: no cover
            # Reads and the write inside the block use the lock's transaction.
            current = await a.get("k")
            await a.save("k", token(2), expected_version=current.version)
        async with b.lock("k"):
            assert (await b.get("k")).version == 2
        # A first mint (no row yet) is locked by name.
        async with a.lock("new"):
            with pytest.raises(StorageError):
                async with b.lock("new"):
                    pass  # pragma: no cover
    finally:
        await drop_tables(one, which)
        await one.dispose()
        await two.dispose()


@pytest.mark.postgres
async def test_row_locks_give_single_flight_across_managers(
    postgres_dsn, emu, browser_factory
):
    url = postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    engines = [create_async_engine(url) for _ in range(3)]
    which = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    await create_tables(engines[0], which)
    key = TokenCipher.generate_key()
    try:
        from support.fastapi import header_user

        apps = [
            make_sf(
                emu,
                store=SQLAlchemyTokenStore(e, TokenCipher([key]), tables=which),
                user_key=header_user,
            )
            for e in engines
        ]
        browsers = [browser_factory(make_api(sf), **{"x-user": "alice"}) for sf in apps]
        assert (await browser_login(emu, browsers[0])).status_code == 303
        for b in browsers:
            assert (await b.get("/me")).json()["status"] == 200
        emu.expire_access_tokens()
        statuses: list[int] = []

        async def hit(b: Any) -> None:
            statuses.append((await b.get("/me")).json()["status"])

        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(hit, browsers[i % 3])
        assert statuses == [200] * 60
        assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
        record = await apps[0].store.get("user:alice")
        dump = await sweep_tables(engines[0], which)
        for value in (record.token.access_token, record.token.refresh_token):
            assert value not in dump
    finally:
        await drop_tables(engines[0], which)
        for e in engines:
            await e.dispose()


async def test_login_with_sqlite_store_leaves_no_plaintext(
    tmp_path, emu, browser_factory, cipher
):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/app.db")
    which = build_tables(prefix="app_")
    await create_tables(engine, which)
    try:
        sf = make_sf(emu, store=SQLAlchemyTokenStore(engine, cipher, tables=which))
        assert isinstance(sf.pending_flows, SQLAlchemyPendingFlowStore)
        browser = browser_factory(make_api(sf))
        login = await browser.post("/salesforce/login")
        state = login.headers["location"].split("state=")[1].split("&")[0]
        assert state not in await sweep_tables(engine, which)
        from support.fastapi import authorize

        await browser.get(await authorize(emu, login))
        assert (await browser.get("/me")).json()["status"] == 200
        emu.expire_access_tokens()
        assert (await browser.get("/me")).json()["status"] == 200
        dump = await sweep_tables(engine, which)
        async with engine.connect() as conn:
            (key,) = (await conn.execute(select(which.tokens.c.key))).one()
        record = await sf.store.get(key)
        for value in (
            record.token.access_token,
            record.token.refresh_token,
            record.token.id_token,
        ):
            assert value and value not in dump
        assert emu.calls("refresh_token") == 1
    finally:
        await engine.dispose()


@pytest.mark.redis
async def test_login_with_redis_store_leaves_no_plaintext(
    redis_url, emu, browser_factory, cipher
):
    from redis.asyncio import Redis

    from sfoauth_core.storage import AsyncRedisTokenStore
    from sfoauth_fastapi import RedisPendingFlowStore

    prefix = f"sfotest:{uuid.uuid4().hex}:"
    redis = Redis.from_url(redis_url)
    try:
        sf = make_sf(emu, store=AsyncRedisTokenStore(redis, cipher, prefix=prefix))
        assert isinstance(sf.pending_flows, RedisPendingFlowStore)
        browser = browser_factory(make_api(sf))
        await browser_login(emu, browser)
        emu.expire_access_tokens()
        assert (await browser.get("/me")).json()["status"] == 200
        dump = []
        async for name in redis.scan_iter(match=prefix + "*"):
            kind = await redis.type(name)
            if kind == b"hash":
                dump.extend(str(v) for v in (await redis.hgetall(name)).values())
            elif kind == b"string":
                dump.append(str(await redis.get(name)))
        text_dump = " ".join(dump)
        (rec_name,) = [n async for n in redis.scan_iter(match=prefix + "rec:*")]
        record = await sf.store.get(rec_name.decode()[len(prefix) + 4 :])
        for value in (record.token.access_token, record.token.refresh_token):
            assert value not in text_dump
        assert not [n async for n in redis.scan_iter(match=prefix + "flow:*")]
    finally:
        async for name in redis.scan_iter(match=prefix + "*"):
            await redis.delete(name)
        await redis.aclose()


def _record_token(n: int = 1, **changes: Any) -> Token:
    return replace(token(n), **changes)


async def test_records_keep_refreshed_at_and_the_refresh_marker(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    await record_contract.check_refreshed_at_and_marker(store, _record_token)
    dump = await sweep_tables(engine, tables)
    assert "5Aep-REFRESH" not in dump


async def test_idle_keys(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    await record_contract.check_idle_keys(store, _record_token)


async def test_idle_keys_fall_back_to_updated_at_for_old_rows(engine, tables, cipher):
    store = SQLAlchemyTokenStore(engine, cipher, tables=tables)
    record = await store.save("old", token(1))
    async with engine.begin() as conn:
        await conn.execute(update(tables.tokens).values(refreshed_at=None))
    assert await store.idle_keys(idle_since=record.updated_at + 1) == ["old"]
    assert await store.idle_keys(idle_since=record.updated_at - 1) == []


async def test_create_tables_adds_the_refreshed_at_column_to_an_old_table(
    engine, cipher
):
    which = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    old = MetaData()
    Table(  # the token table as created before `refreshed_at` existed
        which.tokens.name,
        old,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in which.tokens.columns
            if c.name != "refreshed_at"
        ),
    )
    async with engine.begin() as conn:
        await conn.run_sync(old.create_all)
    try:
        store = SQLAlchemyTokenStore(engine, cipher, tables=which)
        with pytest.raises(StorageError, match="lacks a column") as info:
            await store.save("k", token(1))
        assert "create_tables" in str(info.value)
        await create_tables(engine, which)  # the documented upgrade
        await create_tables(engine, which)  # idempotent
        saved = await store.save("k", token(1))
        assert (await store.get("k")).refreshed_at == pytest.approx(saved.refreshed_at)
        assert await store.idle_keys(idle_since=saved.refreshed_at + 1) == ["k"]
    finally:
        await drop_tables(engine, which)
