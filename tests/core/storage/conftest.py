"""Store factories shared by the storage tests: every store runs the same contract."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sfoauth_core.storage import (
    AsyncInMemoryTokenStore,
    AsyncRedisTokenStore,
    InMemoryTokenStore,
    RedisTokenStore,
    TokenCipher,
)
from sfoauth_core.tokens import Token

CIPHER_KEY = TokenCipher.generate_key()


def make_token(n: int = 1, **changes: Any) -> Token:
    values: dict[str, Any] = {
        "access_token": f"00Dxx0000001abc!AQ0.access-{n}-{uuid.uuid4().hex}",
        "refresh_token": f"5Aep861.refresh-{n}-{uuid.uuid4().hex}",
        "instance_url": "https://acme.my.salesforce.com",
        "id_url": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
        "org_id": "00DXX0000001abcEAA",
        "user_id": "005XX000001xyzQAA",
        "issued_at": 1767229200.456,
        "scopes": ("api", "refresh_token"),
    }
    values.update(changes)
    return Token(**values)


async def call(result: Any) -> Any:
    """Await async store results; pass sync ones through."""
    return await result if inspect.isawaitable(result) else result


@asynccontextmanager
async def hold(store: Any, key: str) -> AsyncIterator[None]:
    manager = store.lock(key)
    if hasattr(manager, "__aenter__"):
        async with manager:
            yield
    else:
        with manager:
            yield


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A unique key prefix, with every key under it removed afterwards."""
    import redis

    prefix = f"sfoauth-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match=f"{prefix}*"):
        client.delete(name)
    client.close()


@pytest.fixture(params=["memory", "async-memory", "redis", "async-redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    kind = request.param
    if kind == "memory":
        yield InMemoryTokenStore()
        return
    if kind == "async-memory":
        yield AsyncInMemoryTokenStore()
        return
    import redis
    import redis.asyncio

    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    cipher = TokenCipher([CIPHER_KEY])
    if kind == "redis":
        client = redis.Redis.from_url(url)
        yield RedisTokenStore(client, cipher, prefix=prefix)
        client.close()
    else:
        aclient = redis.asyncio.Redis.from_url(url)
        yield AsyncRedisTokenStore(aclient, cipher, prefix=prefix)
        await aclient.aclose()
