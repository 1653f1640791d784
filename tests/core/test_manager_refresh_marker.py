"""The durable "refresh in flight" marker (issue 12.1, issue 13's soak).

With refresh-token rotation, a refresh token presented while an earlier refresh with it
may still be in flight at Salesforce is a replay: it is refused (reference 15.1) or,
once the first one is processed, revokes the grant (15.2). The manager announces every
refresh in the store before it sends it (the marker: when, and a digest of the refresh
token) and releases the store's lock; whoever finds a young marker for its refresh token
watches the store instead of calling, and refreshes itself only once the window has
passed. These tests count the refresh calls the emulator received.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from support.record_contract import age_marker

from sfoauth_core.exceptions import (
    ConfigurationError,
    SalesforceUnavailableError,
    StorageError,
)
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.manager import _base as manager_base
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.storage.base import refresh_digest
from sfoauth_core.testing import Fault, SalesforceEmulator
from sfoauth_core.tokens import Token

ONE_ATTEMPT = RetryPolicy(attempts=1)
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=0.0)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    return emulator


def manager(
    emu: SalesforceEmulator,
    store: Any,
    *,
    timeout: float = 30.0,
    retry: RetryPolicy = FAST_RETRY,
    transport: httpx.BaseTransport | None = None,
    **kwargs: Any,
) -> TokenManager:
    app = emu.connected_app("web", timeout=timeout)
    oauth = SalesforceOAuth(
        app,
        http_client=httpx.Client(
            transport=transport or emu.transport(), timeout=app.timeout
        ),
    )
    return TokenManager(oauth, store, retry=retry, **kwargs)


def async_manager(
    emu: SalesforceEmulator, store: Any, *, retry: RetryPolicy = FAST_RETRY
) -> AsyncTokenManager:
    oauth = AsyncSalesforceOAuth(
        emu.connected_app("web"),
        http_client=httpx.AsyncClient(transport=emu.async_transport()),
    )
    return AsyncTokenManager(oauth, store, retry=retry)


def connect(store: Any, emu: SalesforceEmulator, key: str = "u1") -> Token:
    token = Token.from_response(emu.issue_tokens("web"))
    store.save(key, token)
    return token


def test_the_window_defaults_to_twice_the_timeout_plus_a_margin(emu):
    store = InMemoryTokenStore()
    assert manager(emu, store, timeout=30).refresh_window == 65.0
    assert manager(emu, store, timeout=2, refresh_window=9).refresh_window == 9
    with pytest.raises(ConfigurationError, match="refresh_window"):
        manager(emu, store, refresh_window=0)


def test_the_marker_is_in_the_store_before_the_refresh_is_sent(emu):
    store = InMemoryTokenStore()
    first = connect(store, emu)
    seen: list[Any] = []
    inner = emu.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            seen.append(store.get("u1"))  # what any other worker would read now
        return inner.handle_request(request)

    mgr = manager(emu, store, transport=httpx.MockTransport(handler))
    renewed = mgr.refresh("u1", stale=first)
    [during] = seen
    assert during.refresh_digest == refresh_digest(first.refresh_token)
    assert during.refresh_started_at is not None and during.token == first
    after = store.get("u1")
    assert after.token == renewed and after.refresh_digest is None
    assert after.refreshed_at is not None and emu.calls("refresh_token") == 1


def test_a_timed_out_refresh_is_not_replayed_within_the_window(emu):
    """The client gave up after its timeout while Salesforce went on and rotated: no
    refresh with the same refresh token follows within the window, from this manager
    or another sharing the store, so the grant is not revoked by reuse detection."""
    store = InMemoryTokenStore()
    first = connect(store, emu)
    one = manager(emu, store, timeout=0.3, retry=ONE_ATTEMPT)
    two = manager(emu, store, timeout=0.3, retry=ONE_ATTEMPT)
    emu.inject_fault(
        Fault(kind="latency", seconds=0.6, count=1, grant_type="refresh_token")
    )
    with pytest.raises(SalesforceUnavailableError):
        one.refresh("u1", stale=first)
    assert emu.calls("refresh_token") == 1
    for mgr in (one, two, one):
        with pytest.raises(SalesforceUnavailableError, match="in flight"):
            mgr.refresh("u1", stale=first)
    assert emu.calls("refresh_token") == 1  # never presented again
    assert emu.reuse_detected == 0
    record = store.get("u1")
    assert record.status == "active" and record.token == first
    assert record.refresh_digest == refresh_digest(first.refresh_token)


def test_a_marker_left_by_a_dead_worker_holds_until_the_window_has_passed(emu):
    """A worker killed with its refresh at Salesforce leaves only its marker."""
    store = InMemoryTokenStore()
    first = connect(store, emu)
    record = store.get("u1")
    store.set_refresh_marker(
        "u1", refresh_digest(first.refresh_token), expected_version=record.version
    )
    mgr = manager(emu, store, timeout=0.2)
    with pytest.raises(SalesforceUnavailableError, match="in flight"):
        mgr.refresh("u1", stale=first)
    assert emu.calls("refresh_token") == 0
    age_marker(store, "u1", mgr.refresh_window)
    renewed = mgr.refresh("u1", stale=first)
    assert renewed.refresh_token != first.refresh_token
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
    assert store.get("u1").refresh_digest is None


def test_a_marker_for_another_refresh_token_does_not_hold(emu):
    store = InMemoryTokenStore()
    first = connect(store, emu)
    record = store.get("u1")
    store.set_refresh_marker(
        "u1", refresh_digest("an older refresh token"), expected_version=record.version
    )
    assert manager(emu, store).refresh("u1", stale=first) != first
    assert emu.calls("refresh_token") == 1


def test_a_watcher_gets_the_holders_token_without_calling(emu):
    store = InMemoryTokenStore()
    first = connect(store, emu)
    emu.inject_fault(
        Fault(kind="latency", seconds=0.5, count=1, grant_type="refresh_token")
    )
    holder, watcher = manager(emu, store), manager(emu, store)
    got: dict[str, Any] = {}
    marked = threading.Event()
    real = store.set_refresh_marker

    def announce(*args: Any, **kwargs: Any) -> Any:
        record = real(*args, **kwargs)
        marked.set()
        return record

    store.set_refresh_marker = announce  # type: ignore[method-assign]
    thread = threading.Thread(
        target=lambda: got.setdefault("holder", holder.refresh("u1", stale=first))
    )
    thread.start()
    assert marked.wait(5)
    renewal = watcher.renew("u1", stale=first)  # the store's lock is free by now
    thread.join(10)
    assert renewal.token == got["holder"] and not renewal.at_salesforce
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


def test_a_store_failing_at_the_write_gets_the_token_when_it_is_back(emu, monkeypatch):
    """The holder's database session is terminated while its refresh is at
    Salesforce: the save is tried again and lands; nobody replays meanwhile."""
    monkeypatch.setattr(manager_base, "SAVE_RETRY_PAUSES", (0.0, 0.0, 0.0))
    store = InMemoryTokenStore()
    first = connect(store, emu)
    real = store.save
    failures = iter([True, True])

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if next(failures, False):
            raise StorageError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    store.save = flaky  # type: ignore[method-assign]
    renewed = manager(emu, store).refresh("u1", stale=first)
    record = store.get("u1")
    assert record.token == renewed != first and record.refresh_digest is None
    assert manager(emu, store).refresh("u1", stale=first) == renewed  # no call
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


def test_a_store_down_longer_keeps_the_token_pending_and_others_wait(emu, monkeypatch):
    monkeypatch.setattr(manager_base, "SAVE_RETRY_PAUSES", (0.0,))
    store = InMemoryTokenStore()
    first = connect(store, emu)
    real = store.save
    down = [True]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if down[0]:
            raise StorageError("store down")
        return real(*args, **kwargs)

    store.save = flaky  # type: ignore[method-assign]
    holder = manager(emu, store)
    other = manager(emu, store, timeout=0.2)
    renewed = holder.refresh("u1", stale=first)  # served from memory, pending
    assert store.get("u1").token == first
    # The other worker finds the holder's marker: no replay of the old refresh token.
    with pytest.raises(SalesforceUnavailableError, match="in flight"):
        other.refresh("u1", stale=first)
    down[0] = False
    assert holder.refresh("u1", stale=first) == renewed  # the pending write lands
    assert other.refresh("u1", stale=first) == renewed
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


def test_an_answered_failure_clears_the_marker(emu):
    store = InMemoryTokenStore()
    first = connect(store, emu)
    emu.inject_fault(
        Fault(kind="status", status=503, count=3, grant_type="refresh_token")
    )
    mgr = manager(emu, store)
    with pytest.raises(SalesforceUnavailableError):
        mgr.refresh("u1", stale=first)
    assert store.get("u1").refresh_digest is None  # answered: nothing in flight
    assert mgr.refresh("u1", stale=first) != first  # and the next one may go at once
    assert emu.calls("refresh_token") == 4 and emu.reuse_detected == 0


def test_a_retry_stamps_the_marker_again(emu):
    store = InMemoryTokenStore()
    first = connect(store, emu)
    emu.inject_fault(
        Fault(kind="status", status=503, count=2, grant_type="refresh_token")
    )
    stamps: list[float] = []
    real = store.set_refresh_marker

    def spy(key: str, digest: str | None, **kwargs: Any) -> Any:
        record = real(key, digest, **kwargs)
        if digest is not None:
            stamps.append(record.refresh_started_at)
        return record

    store.set_refresh_marker = spy  # type: ignore[method-assign]
    manager(emu, store).refresh("u1", stale=first)
    assert len(stamps) == 3 and stamps == sorted(stamps)  # one per attempt
    assert emu.calls("refresh_token") == 3


@pytest.mark.anyio
async def test_a_cancelled_refresh_is_not_replayed_by_another_worker(emu):
    """An async caller cancelled (or timed out) while its refresh is at Salesforce:
    the refresh completes (shielded) and another worker sharing the store, arriving
    meanwhile, neither calls nor revokes the grant."""
    store = AsyncInMemoryTokenStore()
    first = Token.from_response(emu.issue_tokens("web"))
    await store.save("u1", first)
    emu.inject_fault(
        Fault(kind="latency", seconds=0.4, count=1, grant_type="refresh_token")
    )
    one, two = async_manager(emu, store), async_manager(emu, store)
    results: list[Token] = []

    async def cancelled() -> None:
        with anyio.move_on_after(0.05):
            await one.refresh("u1", stale=first)

    async def other() -> None:
        with anyio.fail_after(5):  # the marker is written before the request leaves
            while (await store.get("u1")).refresh_digest is None:
                await anyio.sleep(0.01)
        results.append(await two.refresh("u1", stale=first))

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancelled)
        tg.start_soon(other)
    record = await store.get("u1")
    assert results == [record.token] and record.token != first
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
