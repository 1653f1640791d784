"""The lock bounds every shared store takes (Redis, Django and SQLAlchemy on
PostgreSQL): validated once, in one place."""

from __future__ import annotations

import pytest

from sfoauth_core.storage.base import (
    DEFAULT_LOCK_TIMEOUT,
    lock_bounds,
    postgres_lock_settings,
)


def test_default_wait_is_the_lease_plus_ten_seconds():
    assert DEFAULT_LOCK_TIMEOUT == 180.0
    assert lock_bounds(DEFAULT_LOCK_TIMEOUT, None) == (180.0, 190.0)
    assert lock_bounds(1, 0.5) == (1.0, 0.5)


@pytest.mark.parametrize("lease", [0, -1, -0.5])
def test_lease_must_be_positive(lease):
    with pytest.raises(ValueError, match="lock_timeout must be positive"):
        lock_bounds(lease, None)


def test_every_store_takes_the_shared_bounds():
    pytest.importorskip("redis")
    import redis

    from sfoauth_core.storage import RedisTokenStore, TokenCipher

    cipher = TokenCipher([TokenCipher.generate_key()])
    store = RedisTokenStore(redis.Redis(), cipher, lock_timeout=2)
    assert (store.lock_timeout, store.lock_wait) == (2.0, 12.0)
    with pytest.raises(ValueError, match="positive"):
        RedisTokenStore(redis.Redis(), cipher, lock_timeout=0)


def test_postgres_settings_are_whole_milliseconds():
    assert postgres_lock_settings(180, 190) == (
        "SET LOCAL lock_timeout = 190000",
        "SET LOCAL idle_in_transaction_session_timeout = 180000",
    )
    # Sub-millisecond values never become 0 (which PostgreSQL reads as "no limit").
    assert postgres_lock_settings(0.0001, 0.0001) == (
        "SET LOCAL lock_timeout = 1",
        "SET LOCAL idle_in_transaction_session_timeout = 1",
    )
