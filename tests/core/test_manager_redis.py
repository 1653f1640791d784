"""The token manager over the real Redis: processes sharing one grant, Redis faults.

* 8 OS processes x 25 requests, one expired token, the emulator on a loopback port with
  rotation and reuse detection: exactly one refresh, no reuse, the stored refresh token
  is the last one issued, and Redis holds no plaintext token afterwards;
* a killed lock holder delays the refresh by its lease, then exactly one refresh runs;
* Redis down: cached tokens keep working, and no refresh is attempted (a rotated token
  could not be saved).
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from dataclasses import replace

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sfoauth_core.exceptions import StorageError
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import TokenManager
from sfoauth_core.storage import RedisTokenStore, TokenCipher
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/"
# Fixed per run by the parent and handed to the workers (each spawn re-imports this module).
KEY = TokenCipher.generate_key()
CONNECTION = "00DXX0000001abc2AA/005XX000001xyzQYAQ"


@pytest.fixture
def prefix(redis_url):
    value = f"sfoauth-test:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match=f"{value}*"):
        client.delete(name)
    client.close()


def build(
    base_url: str,
    redis_url: str,
    prefix: str,
    *,
    client_id: str,
    secret: str,
    lock_timeout: float = 60.0,
    redis_client=None,
    key: str = KEY,
) -> TokenManager:
    from sfoauth_core.config import ConnectedApp

    app = ConnectedApp(
        client_id=client_id,
        client_secret=secret,
        login_url=base_url,
        allow_loopback=True,
        timeout=5,
    )
    store = RedisTokenStore(
        redis_client or redis.Redis.from_url(redis_url),
        TokenCipher([key]),
        prefix=prefix,
        lock_timeout=lock_timeout,
    )
    manager = TokenManager(
        SalesforceOAuth(app),
        store,
        retry=RetryPolicy(
            attempts=2, base_delay=0.01, max_delay=0.1, max_retry_after=1
        ),
    )
    _OPEN.append(manager)
    return manager


_OPEN: list[TokenManager] = []


@pytest.fixture(autouse=True)
def close_managers():
    yield
    while _OPEN:
        manager = _OPEN.pop()
        manager.oauth.close()
        manager.store.redis.close()


def worker(
    base_url, redis_url, prefix, client_id, secret, key, barrier, results
) -> None:
    try:
        manager = build(
            base_url, redis_url, prefix, client_id=client_id, secret=secret, key=key
        )
        statuses = []
        with manager.client(CONNECTION) as client:
            barrier.wait(timeout=60)
            for _ in range(25):
                statuses.append(client.get(REST).status_code)
        manager.oauth.close()
        manager.store.redis.close()
        results.put(statuses)
    except BaseException as exc:  # report instead of leaving the parent waiting
        results.put(repr(exc))
        raise


def plaintext_sweep(redis_url: str, prefix: str, *tokens: Token) -> int:
    client = redis.Redis.from_url(redis_url)
    blobs: list[bytes] = []
    for name in client.scan_iter(match=f"{prefix}*"):
        blobs.append(name)
        if client.type(name) == b"hash":
            for field, value in client.hgetall(name).items():
                blobs += [field, value]
        else:
            blobs.append(client.get(name) or b"")
    client.close()
    for token in tokens:
        for secret in (token.access_token, token.refresh_token):
            if secret:
                assert not any(secret.encode() in blob for blob in blobs)
    return len(blobs)


@pytest.fixture
def served():
    emu = SalesforceEmulator()
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    with emu.serve() as base_url:
        yield emu, base_url


def seed(emu, base_url, manager) -> Token:
    token = replace(Token.from_response(emu.issue_tokens()), instance_url=base_url)
    manager.save(CONNECTION, token, revoke_superseded=False)
    return token


@pytest.mark.redis
@pytest.mark.loopback
def test_8_processes_share_one_refresh(served, redis_url, prefix):
    emu, base_url = served
    web = emu.apps["web"]
    manager = build(
        base_url, redis_url, prefix, client_id=web.client_id, secret=web.client_secret
    )
    first = seed(emu, base_url, manager)
    emu.expire_access_tokens()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    results = ctx.Queue()
    args = (
        base_url,
        redis_url,
        prefix,
        web.client_id,
        web.client_secret,
        KEY,
        barrier,
        results,
    )
    procs = [ctx.Process(target=worker, args=args) for _ in range(8)]
    for p in procs:
        p.start()
    statuses = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert statuses == [[200] * 25] * 8
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    manager.forget(CONNECTION)
    stored = manager.get(CONNECTION)
    assert stored.refresh_token != first.refresh_token
    # The stored refresh token is the last one issued: it refreshes without reuse.
    assert (
        manager.refresh(CONNECTION, stale=stored).refresh_token != stored.refresh_token
    )
    assert emu.reuse_detected == 0
    assert (
        plaintext_sweep(redis_url, prefix, first, stored, manager.get(CONNECTION)) > 0
    )


@pytest.mark.redis
@pytest.mark.loopback
def test_killed_lock_holder_delays_by_its_lease_then_one_refresh(
    served, redis_url, prefix
):
    emu, base_url = served
    web = emu.apps["web"]
    manager = build(
        base_url,
        redis_url,
        prefix,
        client_id=web.client_id,
        secret=web.client_secret,
        lock_timeout=12.0,
    )
    first = seed(emu, base_url, manager)
    # A process took the lock and died: its lock stays until the lease (1 s) runs out.
    dead = redis.Redis.from_url(redis_url).lock(
        manager.store.lock_name(CONNECTION), timeout=1
    )
    assert dead.acquire(blocking=False)
    started = time.monotonic()
    renewed = manager.refresh(CONNECTION, stale=first)
    assert 0.5 < time.monotonic() - started < 5
    assert renewed.refresh_token != first.refresh_token
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
    plaintext_sweep(redis_url, prefix, first, renewed)


@pytest.mark.redis
@pytest.mark.loopback
def test_redis_down_serves_cached_tokens_and_never_refreshes_blind(
    served, redis_url, prefix
):
    emu, base_url = served
    web = emu.apps["web"]
    live = build(
        base_url, redis_url, prefix, client_id=web.client_id, secret=web.client_secret
    )
    token = seed(emu, base_url, live)
    dead = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    manager = build(
        base_url,
        redis_url,
        prefix,
        client_id=web.client_id,
        secret=web.client_secret,
        redis_client=dead,
    )
    manager._remember(CONNECTION, token)  # warmed while Redis was up
    with manager.client(CONNECTION) as client:
        assert client.get(REST).status_code == 200
        emu.expire_access_tokens()
        with pytest.raises(StorageError, match="Redis is unavailable"):
            client.get(REST)
    assert emu.calls("refresh_token") == 0
    assert live.get(CONNECTION) == token  # untouched, still refreshable later
    assert live.refresh(CONNECTION, stale=token).access_token != token.access_token
    assert emu.reuse_detected == 0
