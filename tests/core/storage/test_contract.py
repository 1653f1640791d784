"""The TokenStore / AsyncTokenStore contract, run against every store.

Versions and compare-and-swap, the grant a refresh keeps, the needs-reauth flag that keeps
the row, deletes, and exclusive per-key locks.
"""

from __future__ import annotations

import time

import anyio
import pytest
from support import record_contract
from support.storage import call, hold, make_token

from sfoauth_core.storage import (
    AsyncTokenStore,
    TokenStore,
    VersionConflictError,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"  # redis.asyncio is asyncio-only; trio is covered in test_memory.py


async def test_is_a_store(store):
    assert isinstance(store, (TokenStore, AsyncTokenStore))


async def test_save_get_and_versions(store):
    assert await call(store.get("k")) is None
    first = make_token(1)
    record = await call(store.save("k", first))
    assert (record.version, record.grant, record.status, record.reason) == (
        1,
        "authorization_code",
        "active",
        "",
    )
    loaded = await call(store.get("k"))
    assert loaded.token == first
    assert loaded.token.refresh_token == first.refresh_token
    assert loaded.version == 1
    second = await call(store.save("k", make_token(2)))
    assert second.version == 2
    third = await call(store.save("k", make_token(3), expected_version=2))
    assert third.version == 3


async def test_compare_and_swap_refuses_a_stale_writer(store):
    await call(store.save("k", make_token(1)))
    newer = make_token(2)
    await call(store.save("k", newer, expected_version=1))
    with pytest.raises(VersionConflictError) as info:
        await call(store.save("k", make_token(3), expected_version=1))
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert (await call(store.get("k"))).token == newer


async def test_expected_version_zero_means_create_only(store):
    await call(store.save("k", make_token(1), expected_version=0))
    with pytest.raises(VersionConflictError):
        await call(store.save("k", make_token(2), expected_version=0))
    with pytest.raises(VersionConflictError):
        await call(store.save("gone", make_token(2), expected_version=4))


async def test_refresh_save_keeps_grant_and_username(store):
    await call(store.save("k", make_token(1), grant="jwt_bearer", username="int@acme"))
    record = await call(store.save("k", make_token(2), expected_version=1))
    assert (record.grant, record.username) == ("jwt_bearer", "int@acme")
    relogin = await call(store.save("k", make_token(3), grant="authorization_code"))
    assert (relogin.grant, relogin.username) == ("authorization_code", None)


async def test_needs_reauth_keeps_the_row_until_a_new_login(store):
    token = make_token(1)
    await call(store.save("k", token))
    marked = await call(
        store.mark_needs_reauth("k", "invalid_grant: expired", expected_version=1)
    )
    assert (marked.status, marked.reason, marked.version) == (
        "needs_reauth",
        "invalid_grant: expired",
        2,
    )
    assert marked.needs_reauth
    loaded = await call(store.get("k"))
    assert loaded.token == token and loaded.needs_reauth
    assert loaded.reason == "invalid_grant: expired"
    with pytest.raises(VersionConflictError):
        await call(store.mark_needs_reauth("k", "again", expected_version=1))
    with pytest.raises(VersionConflictError):
        await call(store.mark_needs_reauth("missing", "x", expected_version=1))
    fresh = await call(store.save("k", make_token(2)))
    assert (fresh.status, fresh.reason) == ("active", "")


async def test_delete(store):
    await call(store.save("k", make_token(1)))
    await call(store.save("other", make_token(2)))
    await call(store.delete("k"))
    await call(store.delete("never-there"))
    assert await call(store.get("k")) is None
    assert await call(store.get("other")) is not None


async def test_lock_is_exclusive_per_key_and_independent_across_keys(store):
    events: list[str] = []
    is_async = hasattr(store.lock("probe"), "__aenter__")

    def sync_holder(name: str, key: str) -> None:
        with store.lock(key):
            events.append(f"{name} in")
            time.sleep(0.1)
            events.append(f"{name} out")

    async def holder(name: str, key: str, delay: float) -> None:
        await anyio.sleep(delay)
        if not is_async:  # sync stores block: hold their locks from threads
            await anyio.to_thread.run_sync(sync_holder, name, key)
            return
        async with hold(store, key):
            events.append(f"{name} in")
            await anyio.sleep(0.1)
            events.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder, "a", "k", 0)
        tg.start_soon(holder, "b", "k", 0.03)
        tg.start_soon(holder, "c", "other", 0.05)
    assert events.index("a out") < events.index("b in")
    assert events.index("c in") < events.index("a out")  # other key: not serialised


async def test_records_keep_refreshed_at_and_the_refresh_marker(store):
    await record_contract.check_refreshed_at_and_marker(store, make_token)


async def test_idle_keys(store):
    await record_contract.check_idle_keys(store, make_token)
