"""Pending-login stores: one protocol, single use, encrypted when they leave the process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sfoauth_core.exceptions import StorageError
from sfoauth_core.login import (
    AsyncInMemoryPendingLoginStore,
    AsyncPendingLoginStore,
    AsyncRedisPendingLoginStore,
    InMemoryPendingLoginStore,
    PendingLogin,
    PendingLoginStore,
    RedisPendingLoginStore,
)
from sfoauth_core.storage import TokenCipher

PENDING = PendingLogin(
    state="S" * 43,
    code_verifier="V" * 64,
    nonce="N" * 43,
    issuer="https://login.salesforce.com",
    token_url="https://login.salesforce.com/services/oauth2/token",
    redirect_uri="https://app.example.com/callback",
    next_url="/reports",
    user="42",
    expires_at=2e9,
)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    import redis

    name = f"sfoauth-test:{uuid.uuid4().hex}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{name}*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryPendingLoginStore()
        return
    import redis

    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    cipher = TokenCipher(TokenCipher.generate_key())
    yield RedisPendingLoginStore(
        client, cipher, prefix=request.getfixturevalue("prefix")
    )
    client.close()


def test_a_login_is_taken_once(store):
    assert isinstance(store, PendingLoginStore)
    store.put("id-1", PENDING)
    assert store.take("id-2") is None
    assert store.take("id-1") == PENDING
    assert store.take("id-1") is None


def test_redis_keeps_only_ciphertext_bound_to_the_id(redis_url, prefix):
    import redis

    client = redis.Redis.from_url(redis_url)
    store = RedisPendingLoginStore(
        client, TokenCipher(TokenCipher.generate_key()), prefix=prefix, ttl=60
    )
    store.put("id-1", PENDING)
    raw = client.get(f"{prefix}flow:id-1")
    assert raw is not None and b"SSSS" not in raw and b"VVVV" not in raw
    assert 0 < client.ttl(f"{prefix}flow:id-1") <= 60
    client.set(f"{prefix}flow:id-2", raw)  # copied under another id: refused
    with pytest.raises(StorageError):
        store.take("id-2")
    client.close()


def test_redis_failure_is_a_storage_error():
    import redis

    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    store = RedisPendingLoginStore(client, TokenCipher(TokenCipher.generate_key()))
    with pytest.raises(StorageError):
        store.put("id", PENDING)
    with pytest.raises(StorageError):
        store.take("id")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_async_twins_take_once(request, anyio_backend, kind):
    store: Any
    if kind == "memory":
        store = AsyncInMemoryPendingLoginStore()
    else:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(request.getfixturevalue("redis_url"))
        store = AsyncRedisPendingLoginStore(
            client,
            TokenCipher(TokenCipher.generate_key()),
            prefix=request.getfixturevalue("prefix"),
        )
    assert isinstance(store, AsyncPendingLoginStore)
    await store.put("id-1", PENDING)
    assert await store.take("id-1") == PENDING
    assert await store.take("id-1") is None
    if kind == "redis":
        await client.aclose()
