"""SECURITY.md items 21-26 with the SQLAlchemy store on PostgreSQL (row locks).

The scenarios are shared with the other stores (``tests/support/security_lifecycle.py``). Each
manager gets its own engine (its own connection pool), as a worker process would.
"""

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from support import security_lifecycle as lifecycle

from sfoauth_core.storage import TokenCipher
from sfoauth_fastapi.storage import (
    SQLAlchemyTokenStore,
    build_tables,
    create_tables,
    drop_tables,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg is asyncio-only


@pytest.fixture
async def new_store(postgres_dsn: str) -> AsyncIterator[Callable[[], Any]]:
    url = postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    tables = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
    cipher = TokenCipher([TokenCipher.generate_key()])
    engines: list[AsyncEngine] = [create_async_engine(url)]
    await create_tables(engines[0], tables)

    async def on_postgres() -> SQLAlchemyTokenStore:
        engine = create_async_engine(url)
        engines.append(engine)
        return SQLAlchemyTokenStore(engine, cipher, tables=tables)

    yield on_postgres
    await drop_tables(engines[0], tables)
    for engine in engines:
        await engine.dispose()


@pytest.mark.parametrize("scenario", lifecycle.SCENARIOS, ids=lambda s: s.__name__)
async def test_lifecycle_on_postgres(scenario, new_store):
    await scenario(lifecycle.rotating_emulator(), new_store)
