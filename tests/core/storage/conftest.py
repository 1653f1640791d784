"""Store factories shared by the storage tests: every store runs the same contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.storage import CIPHER_KEY

from sfoauth_core.storage import (
    AsyncFileTokenStore,
    AsyncInMemoryTokenStore,
    AsyncRedisTokenStore,
    FileTokenStore,
    InMemoryTokenStore,
    RedisTokenStore,
    TokenCipher,
)


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


@pytest.fixture(
    params=["memory", "async-memory", "file", "async-file", "redis", "async-redis"]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    kind = request.param
    if kind in ("file", "async-file"):
        path = request.getfixturevalue("tmp_path") / "cfg" / "tokens.json.enc"
        environ = {"SFOAUTH_TOKEN_KEY": CIPHER_KEY}
        if kind == "file":
            yield FileTokenStore(path, environ=environ)
        else:
            yield AsyncFileTokenStore(path, environ=environ)
        return
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
