"""Issue 13 defect 9 (FastAPI): a key removed from the cipher while stored tokens still
use it is reported by a start-up warning (before, nothing said so until a user's request
failed)."""

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from support.fastapi import make_sf

from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token
from sfoauth_fastapi.storage import (
    SQLAlchemyTokenStore,
    build_tables,
    create_tables,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def engine(tmp_path: Any) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/keys.db")
    yield eng
    await eng.dispose()


def token(n: int) -> Token:
    return Token(
        access_token=f"00DXX0000001abc!ACCESS-{n}-{uuid.uuid4().hex}",
        instance_url="https://acme.my.salesforce.com",
        org_id="00DXX0000001abc2AA",
        user_id=f"005XX00000{n:05d}AAA",
    )


async def test_start_up_warns_about_tokens_under_a_removed_key(emu, engine, caplog):
    tables = build_tables(prefix="k_")
    await create_tables(engine, tables)
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    old = SQLAlchemyTokenStore(engine, TokenCipher([old_key]), tables=tables)
    for n in range(3):
        await old.save(f"k{n}", token(n), expected_version=None)
    current = SQLAlchemyTokenStore(engine, TokenCipher([new_key]), tables=tables)
    assert await current.unknown_key_ids() == {TokenCipher([old_key]).primary_key_id: 3}
    caplog.set_level(logging.WARNING, "sfoauth.fastapi")
    sf = make_sf(emu, store=current)
    async with sf.lifespan():
        pass
    warned = [r.getMessage() for r in caplog.records if "cannot be" in r.getMessage()]
    assert len(warned) == 1
    assert "3 stored Salesforce connection(s)" in warned[0]
    assert TokenCipher([old_key]).primary_key_id in warned[0]
    assert old_key not in caplog.text and new_key not in caplog.text


async def test_no_warning_when_every_key_is_there(emu, engine, caplog):
    tables = build_tables(prefix="ok_")
    await create_tables(engine, tables)
    key = TokenCipher.generate_key()
    store = SQLAlchemyTokenStore(engine, TokenCipher([key]), tables=tables)
    await store.save("k1", token(1), expected_version=None)
    assert await store.unknown_key_ids() == {}
    caplog.set_level(logging.WARNING, "sfoauth.fastapi")
    async with make_sf(emu, store=store).lifespan():
        pass
    assert "cannot be decrypted" not in caplog.text


@pytest.mark.redis
async def test_the_redis_store_reports_records_under_a_removed_key(
    redis_url, emu, caplog
):
    from redis.asyncio import Redis

    from sfoauth_core.storage import AsyncRedisTokenStore

    prefix = f"sfoauth-test-{uuid.uuid4().hex[:8]}:"
    redis = Redis.from_url(redis_url)
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    try:
        old = AsyncRedisTokenStore(redis, TokenCipher([old_key]), prefix=prefix)
        for n in range(2):
            await old.save(f"k{n}", token(n), expected_version=None)
        current = AsyncRedisTokenStore(redis, TokenCipher([new_key]), prefix=prefix)
        assert await current.unknown_key_ids() == {
            TokenCipher([old_key]).primary_key_id: 2
        }
        caplog.set_level(logging.WARNING, "sfoauth.fastapi")
        async with make_sf(emu, store=current).lifespan():
            pass
        assert "2 stored Salesforce connection(s)" in caplog.text
        rotated = AsyncRedisTokenStore(
            redis, TokenCipher([new_key, old_key]), prefix=prefix
        )
        assert await rotated.unknown_key_ids() == {}
    finally:
        async for name in redis.scan_iter(match=prefix + "*"):
            await redis.delete(name)
        await redis.aclose()
