"""In-memory stores: bounded, per-key locks with a wait limit, async on asyncio and trio."""

from __future__ import annotations

import threading

import anyio
import pytest
from support.storage import make_token

from sfoauth_core.exceptions import StorageError
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore


def test_bounded_by_maxsize():
    store = InMemoryTokenStore(maxsize=2)
    for key in "abc":
        store.save(key, make_token())
    assert len(store) == 2
    assert store.get("a") is None and store.get("c") is not None


def test_sync_lock_wait_limit():
    store = InMemoryTokenStore(lock_wait=0.05)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock("k"):
            inside.set()
            release.wait(2)

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait(2)
    with pytest.raises(StorageError, match="timed out"):
        with store.lock("k"):
            pass
    with store.lock("other"):
        pass
    release.set()
    thread.join()
    with store.lock("k"):
        pass


@pytest.mark.anyio
async def test_async_lock_on_every_backend(anyio_backend):
    store = AsyncInMemoryTokenStore(lock_wait=0.05)
    order: list[str] = []

    async def first() -> None:
        async with store.lock("k"):
            order.append("first in")
            await anyio.sleep(0.2)
            order.append("first out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.sleep(0.02)
        with pytest.raises(StorageError, match="timed out"):
            async with store.lock("k"):
                pass
        order.append("second gave up")
    assert order == ["first in", "second gave up", "first out"]
    async with store.lock("k"):
        await store.save("k", make_token())
    assert (await store.get("k")) is not None
