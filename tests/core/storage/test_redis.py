"""Redis stores on the real Redis at 127.0.0.1:6379 (skipped loudly when it is down).

Only ciphertext in Redis, bound to its record; keys under the prefix; leases that free a
killed holder's lock; a fence that stops a holder whose lease ran out; clear errors when
Redis is unreachable; re-encryption that is idempotent and resumable.
"""

from __future__ import annotations

import logging
import time

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from support.storage import CIPHER_KEY, make_token

from sfoauth_core.exceptions import StorageError
from sfoauth_core.storage import (
    AsyncRedisTokenStore,
    RedisTokenStore,
    TokenCipher,
    VersionConflictError,
)


@pytest.fixture
def client(redis_url):
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def make_store(client, redis_prefix):
    def factory(keys=(CIPHER_KEY,), **kwargs):
        return RedisTokenStore(
            client, TokenCipher(list(keys)), prefix=redis_prefix, **kwargs
        )

    return factory


def everything_under(client, prefix) -> list[bytes]:
    blobs = []
    for name in client.scan_iter(match=f"{prefix}*"):
        blobs.append(name)
        kind = client.type(name)
        if kind == b"hash":
            for field, value in client.hgetall(name).items():
                blobs += [field, value]
        elif kind == b"string":
            blobs.append(client.get(name))
    return blobs


def test_only_ciphertext_reaches_redis_and_keys_are_namespaced(
    client, make_store, redis_prefix
):
    store = make_store()
    tokens = [make_token(n) for n in range(3)]
    for n, token in enumerate(tokens):
        store.save(f"00D/005{n}", token)
    store.mark_needs_reauth("00D/0050", "invalid_grant")
    with store.lock("00D/0051"):
        blobs = everything_under(client, redis_prefix)
    assert blobs, "nothing was written under the prefix"
    for token in tokens:
        for secret in (token.access_token, token.refresh_token):
            assert not any(secret.encode() in blob for blob in blobs)
    names = [n.decode() for n in client.scan_iter(match="*") if b"sfoauth-test" in n]
    assert all(n.startswith(redis_prefix) for n in names if redis_prefix[:40] in n)
    assert client.hget(f"{redis_prefix}rec:00D/0050", "v") == b"2"
    assert client.hget(f"{redis_prefix}rec:00D/0050", "d").startswith(b"sfo1.")


def test_a_record_copied_to_another_key_does_not_decrypt(
    client, make_store, redis_prefix
):
    store = make_store()
    store.save("alice", make_token(1))
    store.save("mallory", make_token(2))
    stolen = client.hgetall(f"{redis_prefix}rec:alice")
    client.hset(f"{redis_prefix}rec:mallory", mapping=stolen)
    with pytest.raises(StorageError, match="another record"):
        store.get("mallory")


def test_killed_holder_lock_frees_itself_after_the_lease(client, make_store):
    store = make_store(lock_timeout=0.5)
    # A holder that dies without releasing: take the same Redis lock and walk away.
    crashed = client.lock(store.lock_name("k"), timeout=0.5)
    assert crashed.acquire(blocking=False)
    started = time.monotonic()
    with store.lock("k"):
        waited = time.monotonic() - started
    assert 0.3 < waited < 3


def test_lock_wait_limit(client, make_store):
    store = make_store(lock_timeout=5, lock_wait=0.2)
    other = client.lock(store.lock_name("k"), timeout=5)
    assert other.acquire(blocking=False)
    try:
        with pytest.raises(StorageError, match="timed out"):
            with store.lock("k"):
                pass
    finally:
        other.release()


def test_a_holder_whose_lease_expired_cannot_overwrite_the_next_holder(
    make_store, caplog
):
    slow = make_store(lock_timeout=0.3)
    fast = make_store(lock_timeout=5)
    slow.save("k", make_token(0))
    newer = make_token(2)
    with caplog.at_level(logging.WARNING, logger="sfoauth.storage"):
        with slow.lock("k"):
            seen = slow.get("k")
            time.sleep(0.5)  # "talking to Salesforce" for longer than the lease
            with fast.lock("k"):  # the next holder gets in and writes
                fast.save("k", newer, expected_version=fast.get("k").version)
            with pytest.raises(VersionConflictError):
                slow.save("k", make_token(1), expected_version=seen.version)
    assert slow.get("k").token == newer
    assert "expired before it was released" in caplog.text


def test_unreachable_redis_raises_storage_error():
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    store = RedisTokenStore(dead, TokenCipher([CIPHER_KEY]))
    for action in (
        lambda: store.get("k"),
        lambda: store.save("k", make_token()),
        lambda: store.mark_needs_reauth("k", "r"),
        lambda: store.delete("k"),
        lambda: store.lock("k").__enter__(),
        lambda: store.reencrypt_all(),
    ):
        with pytest.raises(StorageError, match="Redis is unavailable"):
            action()


def test_reencrypt_all_is_idempotent_and_keeps_versions(client, make_store):
    old_key, new_key = CIPHER_KEY, TokenCipher.generate_key()
    old = make_store()
    tokens = {f"k{n}": make_token(n) for n in range(5)}
    for key, token in tokens.items():
        old.save(key, token)
    old.save("k0", make_token(9))  # version 2
    rotated = make_store(keys=(new_key, old_key))
    assert rotated.reencrypt_all(batch_size=2) == 5
    assert rotated.reencrypt_all() == 0
    new_only = make_store(keys=(new_key,))
    assert new_only.get("k1").token == tokens["k1"]
    assert new_only.get("k0").version == 2
    with pytest.raises(StorageError, match="not in token_keys"):
        old.get("k1")


def test_cipher_is_required(client):
    with pytest.raises(TypeError, match="TokenCipher"):
        RedisTokenStore(client, None)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_store_shares_layout_with_sync_store(
    redis_url, make_store, anyio_backend
):
    sync_store = make_store()
    aclient = redis.asyncio.Redis.from_url(redis_url)
    try:
        astore = AsyncRedisTokenStore(
            aclient, sync_store.cipher, prefix=sync_store.prefix
        )
        token = make_token(1)
        await astore.save("k", token)
        assert sync_store.get("k").token == token
        sync_store.mark_needs_reauth("k", "refused")
        assert (await astore.get("k")).needs_reauth
        assert await astore.reencrypt_all() == 0
        async with astore.lock("k"):
            with pytest.raises(StorageError, match="timed out"):
                with make_store(lock_wait=0.1).lock("k"):
                    pass
        dead = AsyncRedisTokenStore(
            redis.asyncio.Redis(
                host="127.0.0.1", port=1, retry=AsyncRetry(NoBackoff(), 0)
            ),
            sync_store.cipher,
        )
        with pytest.raises(StorageError, match="Redis is unavailable"):
            await dead.get("k")
        with pytest.raises(StorageError, match="Redis is unavailable"):
            async with dead.lock("k"):
                pass
        await dead.redis.aclose()
    finally:
        await aclient.aclose()
