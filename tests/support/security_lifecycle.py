"""SECURITY.md items 21-26 as scenarios, run by each store's test module.

Each scenario takes the emulator (refresh-token rotation and reuse detection on) and a
``new_store`` callable that returns a *new* store object on the same backend (another
worker's view: its own connection, client or engine). Every manager gets its own store
object, in-process cache and locks, the way separate worker processes would. Callers:

* ``tests/core/test_core_lifecycle_matrix.py`` (in-memory, Redis),
* ``tests/django/test_django_lifecycle_matrix.py`` (Django ORM on PostgreSQL),
* ``tests/fastapi/test_fastapi_lifecycle_matrix.py`` (SQLAlchemy on PostgreSQL).

A module of its own (not ``conftest``) so that every test directory can import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from sfoauth_core.events import TokenEvent, TokenEvents
from sfoauth_core.exceptions import (
    InvalidClientError,
    ReauthorizationRequired,
    SalesforceUnavailableError,
    StorageError,
)
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager
from sfoauth_core.storage import VersionConflictError
from sfoauth_core.testing import Fault, SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=0.0)
KEY = "00DXX0000001abcEAA:005XX000001xyzQAA"

NewStore = Callable[[], Any]


class Events:
    """Every event a manager fires, in order."""

    def __init__(self, events: TokenEvents) -> None:
        self.seen: list[TokenEvent] = []
        for name in ("token_obtained", "token_refreshed", "token_revoked"):
            events.connect(name, self.seen.append)  # type: ignore[arg-type]
        events.connect("needs_reauth", self.seen.append)  # type: ignore[arg-type]

    def names(self) -> list[str]:
        return [e.name for e in self.seen]


def manager(
    emu: SalesforceEmulator, store: Any, *, retry: RetryPolicy = FAST_RETRY
) -> tuple[AsyncTokenManager, Events]:
    events = TokenEvents()
    oauth = AsyncSalesforceOAuth(
        emu.connected_app("web", timeout=5.0),
        http_client=httpx.AsyncClient(transport=emu.async_transport(), timeout=5.0),
    )
    return AsyncTokenManager(oauth, store, events=events, retry=retry), Events(events)


async def connected(
    emu: SalesforceEmulator, new_store: NewStore, count: int = 1
) -> tuple[list[AsyncTokenManager], Token]:
    """``count`` managers (one store object each) sharing one stored grant."""
    managers = [manager(emu, await new_store())[0] for _ in range(count)]
    token = Token.from_response(emu.issue_tokens("web"))
    await managers[0].save(KEY, token, revoke_superseded=False)
    return managers, token


def issued_refresh_tokens(emu: SalesforceEmulator) -> list[str]:
    with emu.state.lock:
        return list(emu.state.refresh_tokens)


# Item 21 ----------------------------------------------------------------------------
async def many_requests_one_expired_token_one_refresh(
    emu: SalesforceEmulator, new_store: NewStore, *, workers: int = 3, each: int = 15
) -> None:
    managers, first = await connected(emu, new_store, workers)
    emu.expire_access_tokens()
    statuses: list[int] = []
    clients = [await m.client(KEY, transport=emu.async_transport()) for m in managers]
    try:

        async def request(client: httpx.AsyncClient) -> None:
            statuses.append((await client.get(REST)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(each):
                for client in clients:
                    tg.start_soon(request, client)
    finally:
        for client in clients:
            await client.aclose()
    assert statuses == [200] * (workers * each)
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0  # nothing revoked under rotation
    stored = await managers[-1].record(KEY)
    # Two writes: the "refresh in flight" marker, then the token (which clears it).
    assert stored is not None and stored.version == 3
    assert stored.refresh_digest is None and stored.refresh_started_at is None
    assert stored.token.refresh_token != first.refresh_token
    assert stored.token.refresh_token == issued_refresh_tokens(emu)[-1]


# Item 22 ----------------------------------------------------------------------------
async def newer_stored_token_is_used_without_a_call(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    (one, two), stale = await connected(emu, new_store, 2)
    newer = await one.refresh(KEY, stale=stale)
    assert emu.calls("refresh_token") == 1
    # The other worker still holds the stale token: the store's newer one wins.
    assert await two.refresh(KEY, stale=stale) == newer
    assert await two.refresh(KEY, stale=stale.access_token) == newer
    assert emu.calls("refresh_token") == 1
    # Only the token that actually failed starts a refresh.
    renewed = await two.refresh(KEY, stale=newer)
    assert renewed.access_token != newer.access_token
    assert emu.calls("refresh_token") == 2 and emu.reuse_detected == 0


async def stale_cache_after_another_worker_renewed_still_recovers(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    """Issue 10 item 5: a worker's cached token was replaced in the store by another
    worker, and the replacement expired too, inside the first worker's cache lifetime.
    The 401 must not reach the app: one refresh per refused request."""
    (one, two), _ = await connected(emu, new_store, 2)
    await two.valid_token(KEY)  # worker two caches the first token
    for round_ in (1, 2):
        emu.expire_access_tokens()
        async with await one.client(KEY, transport=emu.async_transport()) as sf:
            assert (await sf.get(REST)).status_code == 200  # one renews
        emu.expire_access_tokens()  # ... and its token expires as well
        async with await two.client(KEY, transport=emu.async_transport()) as sf:
            assert (await sf.get(REST)).status_code == 200  # re-read, then renewed
        assert emu.calls("refresh_token") == 2 * round_
    assert emu.reuse_detected == 0


# Item 23 ----------------------------------------------------------------------------
async def locks_are_per_connection(
    emu: SalesforceEmulator, new_store: NewStore, *, connections: int = 10
) -> None:
    mgr, _ = manager(emu, await new_store())
    stale: dict[str, Token] = {}
    for n in range(connections):
        # One Salesforce user per connection (a database store allows one row each).
        username = f"user{n}@acme.com"
        emu.add_user(username, "pw-12345678", user_id=f"005XX000002{n:04d}")
        stale[f"k{n}"] = Token.from_response(emu.issue_tokens("web", username))
        await mgr.save(f"k{n}", stale[f"k{n}"], revoke_superseded=False)
    delay = 0.4
    emu.inject_fault(
        Fault(
            kind="latency", seconds=delay, count=connections, grant_type="refresh_token"
        )
    )
    windows: list[tuple[float, float]] = []

    async def renew(key: str) -> None:
        started = time.monotonic()
        await mgr.refresh(key, stale=stale[key])
        windows.append((started, time.monotonic()))

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for key in stale:
            tg.start_soon(renew, key)
    elapsed = time.monotonic() - started
    assert emu.calls("refresh_token") == connections
    assert elapsed < connections * delay / 2, elapsed  # one after another: 4 s
    assert max(s for s, _ in windows) < min(e for _, e in windows)  # all overlapped


async def lease_outlasts_a_refresh(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    store = await new_store()
    mgr, _ = manager(emu, store, retry=RetryPolicy(attempts=3))
    lease = getattr(store, "lock_timeout", None)
    if lease is not None:  # stores without a lease hold locks as long as the holder
        assert lease > mgr.worst_case_refresh_seconds() >= 3 * 5.0


async def stale_writer_cannot_overwrite_a_newer_token(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    (one, two), first = await connected(emu, new_store, 2)
    seen = await two.record(KEY)  # a holder reads version 1 ...
    assert seen is not None and seen.version == 1
    newer = await one.refresh(KEY, stale=first)  # ... and meanwhile versions 2 (the
    # refresh's marker) and 3 (its token) land
    late = Token.from_response(emu.issue_tokens("web"))
    with pytest.raises(VersionConflictError):
        await two.store.save(KEY, late, expected_version=seen.version)
    with pytest.raises(VersionConflictError):
        await two.store.mark_needs_reauth(KEY, "late", expected_version=seen.version)
    record = await one.record(KEY)
    assert record is not None and record.version == 3
    assert record.token == newer and not record.needs_reauth


async def cancelled_holder_keeps_the_rotated_token_and_frees_the_lock(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    (one, two), first = await connected(emu, new_store, 2)
    emu.inject_fault(Fault(kind="latency", seconds=0.3, grant_type="refresh_token"))
    with anyio.move_on_after(0.05):
        await one.refresh(KEY, stale=first)
    record = await two.record(KEY)
    assert record is not None and record.version == 3  # marker, then token
    assert record.token.refresh_token == issued_refresh_tokens(emu)[-1]
    with anyio.fail_after(3):  # the lock was released
        assert await two.refresh(KEY, stale=first) == record.token
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


# Item 24 ----------------------------------------------------------------------------
async def unavailable_leaves_the_grant_untouched(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    store = await new_store()
    retry = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, max_retry_after=5)
    mgr, events = manager(emu, store, retry=retry)
    token = Token.from_response(emu.issue_tokens("web"))
    await mgr.save(KEY, token, revoke_superseded=False)
    before = await mgr.record(KEY)
    for status in (503, 429):
        emu.inject_fault(
            Fault(
                kind="status",
                status=status,
                count=2,
                grant_type="refresh_token",
                retry_after=1,
            )
        )
        started = time.monotonic()
        with pytest.raises(SalesforceUnavailableError) as info:
            await mgr.refresh(KEY, stale=token)
        assert time.monotonic() - started >= 0.95  # Retry-After: 1 was honoured
        assert info.value.status_code == status
        after = await mgr.record(KEY)  # same token and status; Salesforce answered,
        # so nothing is in flight: the refresh's marker is cleared again
        assert after is not None and before is not None
        assert (after.token, after.status, after.grant) == (
            before.token,
            before.status,
            before.grant,
        )
        assert (after.refresh_started_at, after.refresh_digest) == (None, None)
    assert emu.calls("refresh_token") == 4  # bounded: 2 attempts each time
    assert "needs_reauth" not in events.names()
    renewed = await mgr.refresh(KEY, stale=token)  # the kept refresh token still works
    assert renewed.access_token != token.access_token and emu.reuse_detected == 0


# Item 25 ----------------------------------------------------------------------------
async def invalid_grant_flags_once_and_keeps_the_row(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    stores = [await new_store() for _ in range(3)]
    pairs = [manager(emu, s) for s in stores]
    token = Token.from_response(emu.issue_tokens("web"))
    await pairs[0][0].save(KEY, token, revoke_superseded=False)
    await pairs[0][0].oauth.revoke(token.refresh_token or "")
    emu.expire_access_tokens()
    outcomes: list[BaseException] = []

    async def attempt(mgr: AsyncTokenManager) -> None:
        try:
            await mgr.refresh(KEY, stale=token)
        except ReauthorizationRequired as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for mgr, _ in pairs:
            tg.start_soon(attempt, mgr)
    assert len(outcomes) == 3
    assert emu.calls("refresh_token") == 1  # no retry storm across workers
    record = await pairs[1][0].record(KEY)
    assert record is not None and record.needs_reauth
    assert record.token == token  # the row and its grant are kept
    assert "invalid_grant" in record.reason
    fired = [e for _, ev in pairs for e in ev.seen if e.name == "needs_reauth"]
    assert len(fired) == 1 and fired[0].reason == record.reason
    for mgr, _ in pairs:  # later requests are answered by the flag
        with pytest.raises(ReauthorizationRequired):
            await mgr.valid_token(KEY)
    assert emu.calls("refresh_token") == 1


async def invalid_grant_rereads_before_flagging(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    """A sibling that saved a newer grant while our call failed wins: no flag."""
    (mine, sibling), token = await connected(emu, new_store, 2)
    newer = Token.from_response(emu.issue_tokens("web"))
    await mine.oauth.revoke(token.refresh_token or "")  # our call will be refused
    real_run = mine.oauth.run

    async def run(flow: Any) -> Any:
        # While our refresh is in flight, the sibling stores its newer grant (as a
        # worker whose lock lease was lost would).
        if emu.calls("refresh_token") == 0:
            current = await mine.store.get(KEY)
            await mine.store.save(KEY, newer, expected_version=current.version)
        return await real_run(flow)

    mine.oauth.run = run  # type: ignore[method-assign]
    got = await mine.refresh(KEY, stale=token)
    assert got == newer
    assert emu.calls("refresh_token") == 1
    record = await sibling.record(KEY)
    assert record is not None and not record.needs_reauth and record.token == newer


async def invalid_client_is_an_app_error(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    store = await new_store()
    mgr, events = manager(emu, store)
    token = Token.from_response(emu.issue_tokens("web"))
    await mgr.save(KEY, token, revoke_superseded=False)
    emu.apps["web"].client_secret = "rotated-in-setup-" + "x" * 16
    with pytest.raises(InvalidClientError):
        await mgr.refresh(KEY, stale=token)
    record = await mgr.record(KEY)
    assert record is not None and record.status == "active" and record.token == token
    assert "needs_reauth" not in events.names()


# Item 26 ----------------------------------------------------------------------------
async def dropped_rotation_is_never_silently_reused(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    (one, two), token = await connected(emu, new_store, 2)
    emu.inject_fault(Fault(kind="drop_after_rotation"))
    with pytest.raises(ReauthorizationRequired) as info:
        await one.refresh(KEY, stale=token)
    assert "rotation" in info.value.reason
    calls = emu.calls("refresh_token")
    record = await two.record(KEY)
    assert record is not None and record.needs_reauth and record.token == token
    for mgr in (one, two):  # neither worker presents the dead refresh token again
        with pytest.raises(ReauthorizationRequired):
            await mgr.refresh(KEY, stale=token)
    assert emu.calls("refresh_token") == calls


async def unsaved_rotation_is_kept_and_written_later(
    emu: SalesforceEmulator, new_store: NewStore
) -> None:
    (mgr,), token = await connected(emu, new_store, 1)
    store = mgr.store
    real_save = store.save
    failures = [True]

    async def flaky_save(*args: Any, **kwargs: Any) -> Any:
        if failures:
            failures.pop()
            raise StorageError("store down")
        return await real_save(*args, **kwargs)

    store.save = flaky_save  # type: ignore[method-assign]
    renewed = await mgr.refresh(KEY, stale=token)
    assert renewed.refresh_token != token.refresh_token
    assert await mgr.valid_token(KEY) == renewed  # served from memory meanwhile
    # The next renewal writes the kept token first and sees it is already newer.
    assert await mgr.refresh(KEY, stale=token) == renewed
    record = await store.get(KEY)
    assert record is not None and record.token == renewed
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


SCENARIOS = [
    many_requests_one_expired_token_one_refresh,
    newer_stored_token_is_used_without_a_call,
    stale_cache_after_another_worker_renewed_still_recovers,
    locks_are_per_connection,
    lease_outlasts_a_refresh,
    stale_writer_cannot_overwrite_a_newer_token,
    cancelled_holder_keeps_the_rotated_token_and_frees_the_lock,
    unavailable_leaves_the_grant_untouched,
    invalid_grant_flags_once_and_keeps_the_row,
    invalid_grant_rereads_before_flagging,
    invalid_client_is_an_app_error,
    dropped_rotation_is_never_silently_reused,
    unsaved_rotation_is_kept_and_written_later,
]


def rotating_emulator() -> SalesforceEmulator:
    emu = SalesforceEmulator()
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    return emu
