"""SECURITY.md items 21-26 with the in-memory and the Redis stores (async manager).

The scenarios live in ``tests/support/security_lifecycle.py`` and run unchanged with every store:
see ``tests/django/test_django_lifecycle_matrix.py`` (Django ORM on PostgreSQL) and
``tests/fastapi/test_fastapi_lifecycle_matrix.py`` (SQLAlchemy on PostgreSQL).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support import security_lifecycle as lifecycle

from sfoauth_core.storage import (
    AsyncInMemoryTokenStore,
    AsyncRedisTokenStore,
    TokenCipher,
)
from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is asyncio-only


@pytest.fixture
def emu() -> SalesforceEmulator:
    return lifecycle.rotating_emulator()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Any]]:
    if request.param == "memory":
        shared = AsyncInMemoryTokenStore()

        async def memory() -> Any:
            return shared  # one process: every manager shares the object

        yield memory
        return
    import redis.asyncio

    url = request.getfixturevalue("redis_url")
    prefix = f"sfoauth-test:{uuid.uuid4().hex}:"
    cipher = TokenCipher([TokenCipher.generate_key()])
    clients: list[Any] = []

    async def on_redis() -> Any:
        client = redis.asyncio.Redis.from_url(url)
        clients.append(client)
        return AsyncRedisTokenStore(client, cipher, prefix=prefix)

    yield on_redis
    async for name in clients[0].scan_iter(match=f"{prefix}*"):
        await clients[0].delete(name)
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("scenario", lifecycle.SCENARIOS, ids=lambda s: s.__name__)
async def test_lifecycle(scenario, emu, new_store):
    await scenario(emu, new_store)
