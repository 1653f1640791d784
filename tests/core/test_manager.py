"""TokenManager / AsyncTokenManager against the emulator (rotation + reuse detection on).

What is proven here (SECURITY.md items 21-26):
* concurrent requests holding one expired token cause exactly one refresh (threads,
  coroutines), with no reuse detected and the rotated refresh token stored;
* a stored token newer than the stale one is used without a call;
* ``invalid_grant`` flags the connection (row kept, reason, event) and never storms;
* 5xx/429/timeouts are retried, then ``SalesforceUnavailableError`` with the record untouched;
* a dropped rotation ends in ``needs_reauth`` with a reason naming it, not a reuse loop;
* ``invalid_client`` is an app error, nothing flagged; JWT bearer / client credentials
  connections are re-minted; disconnect revokes and always deletes locally;
* per-connection refreshes overlap; a cancelled caller does not lose a rotated token.
"""

from __future__ import annotations

import logging
import threading
import time

import anyio
import pytest
from support.manager import (
    FAST_RETRY,
    connect,
    issue,
    make_async_manager,
    make_manager,
)
from support.record_contract import age_marker

from sfoauth_core.events import TokenEvent
from sfoauth_core.exceptions import (
    ConfigurationError,
    InvalidClientError,
    ReauthorizationRequired,
    SalesforceUnavailableError,
    StorageError,
    TokenNotFoundError,
)
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import TokenManager
from sfoauth_core.manager import _base as manager_base
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.storage.base import refresh_digest
from sfoauth_core.testing import Fault, SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    return emulator


# Single flight ---------------------------------------------------------------------
def test_100_threads_one_expired_token_make_one_refresh(emu):
    manager, recorder = make_manager(emu)
    first = connect(manager, emu)
    statuses: list[int] = []
    with manager.client("u1", transport=emu.transport()) as client:
        assert client.get(REST).status_code == 200
        emu.expire_access_tokens()
        barrier = threading.Barrier(100)

        def request() -> None:
            barrier.wait()
            statuses.append(client.get(REST).status_code)

        threads = [threading.Thread(target=request) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert statuses == [200] * 100
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    stored = manager.get("u1")
    assert stored.refresh_token != first.refresh_token  # rotated and saved
    assert recorder.names() == ["token_obtained", "token_refreshed"]


@pytest.mark.anyio
async def test_100_coroutines_one_expired_token_make_one_refresh(emu):
    manager, recorder = make_async_manager(emu)
    first = issue(emu)
    await manager.save("u1", first, revoke_superseded=False)
    emu.expire_access_tokens()
    async with await manager.client("u1", transport=emu.async_transport()) as client:
        statuses: list[int] = []

        async def request() -> None:
            statuses.append((await client.get(REST)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(request)
    assert statuses == [200] * 100
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    assert (await manager.get("u1")).refresh_token != first.refresh_token
    assert recorder.names() == ["token_obtained", "token_refreshed"]


@pytest.mark.anyio
async def test_a_caller_cancelled_while_waiting_for_the_lock_leaves_at_once(emu):
    # Waiting for the store's lock is cancellable; only the refresh itself (once the
    # lock is held) is shielded. Another holder keeps the lock for the whole test.
    store = AsyncInMemoryTokenStore(lock_wait=60)
    manager, _ = make_async_manager(emu, store)
    first = issue(emu)
    await manager.save("u1", first, revoke_superseded=False)
    emu.expire_access_tokens()
    locked, release = anyio.Event(), anyio.Event()

    async def holder() -> None:
        async with store.lock("u1"):
            locked.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await locked.wait()
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await manager.refresh("u1", stale=first)
        waited = time.monotonic() - started
        release.set()
    assert scope.cancelled_caught
    assert waited < 2, f"cancellation took {waited:.2f} s (the lock wait is 60 s)"
    assert emu.calls("refresh_token") == 0
    # The manager is usable afterwards: its own per-key lock was released.
    renewed = await manager.refresh("u1", stale=first)
    assert renewed.access_token != first.access_token
    assert emu.calls("refresh_token") == 1


def test_rotated_token_is_used_for_the_next_refresh(emu):
    manager, _ = make_manager(emu)
    first = connect(manager, emu)
    one = manager.refresh("u1", stale=first)
    two = manager.refresh("u1", stale=one)
    assert len({first.refresh_token, one.refresh_token, two.refresh_token}) == 3
    assert emu.calls("refresh_token") == 2 and emu.reuse_detected == 0
    assert manager.record("u1").version == 5  # per refresh: its marker, its token
    assert two.instance_url == first.instance_url and two.user_id == first.user_id


def test_sibling_refreshed_between_read_and_refresh_means_no_call(emu):
    manager, _ = make_manager(emu)
    stale = connect(manager, emu)
    # Another worker refreshed and stored a newer token after we read ours.
    other, _ = make_manager(emu, manager.store)
    newer = other.refresh("u1", stale=stale)
    assert emu.calls("refresh_token") == 1
    assert manager.refresh("u1", stale=stale).access_token == newer.access_token
    assert manager.refresh("u1", stale=stale.access_token) == newer
    assert emu.calls("refresh_token") == 1


def test_valid_token_is_served_from_memory(emu):
    manager, _ = make_manager(emu)
    token = connect(manager, emu)
    reads = 0
    original = manager.store.get

    def counting_get(key):
        nonlocal reads
        reads += 1
        return original(key)

    manager.store.get = counting_get  # type: ignore[method-assign]
    for _ in range(1000):
        assert manager.valid_token("u1") is token
    assert reads == 0
    manager.forget("u1")
    assert manager.valid_token("u1") == token
    assert reads == 1


# Expiry -------------------------------------------------------------------------------
def test_session_timeout_refreshes_a_little_early(emu):
    manager, _ = make_manager(emu, session_timeout=7200, leeway=60)
    token = connect(manager, emu)
    stored = manager.get("u1")
    assert stored.expires_at == pytest.approx(token.issued_at + 7200)
    manager._clock = lambda: stored.expires_at - 61  # not yet due
    assert manager.valid_token("u1").access_token == token.access_token
    manager._clock = lambda: stored.expires_at - 59  # within the leeway: refresh now
    renewed = manager.valid_token("u1")
    assert renewed.access_token != token.access_token
    assert emu.calls("refresh_token") == 1
    assert renewed.expires_at == pytest.approx(renewed.issued_at + 7200)


def test_introspection_teaches_expiry(emu):
    manager, _ = make_manager(emu, introspect_expiry=True)
    connect(manager, emu)
    stored = manager.get("u1")
    assert stored.expires_at is not None
    assert stored.expires_at > time.time()


@pytest.mark.parametrize(
    "kwargs, setting",
    [
        ({"session_timeout": 0}, "session_timeout"),
        ({"session_timeout": 30, "leeway": 60}, "leeway"),
        ({"leeway": -1}, "leeway"),
    ],
)
def test_bad_expiry_settings(emu, kwargs, setting):
    with pytest.raises(ConfigurationError) as info:
        make_manager(emu, **kwargs)
    assert info.value.setting == setting


# invalid_grant --------------------------------------------------------------------------
def test_invalid_grant_flags_the_connection_keeps_the_row_and_does_not_storm(emu):
    manager, recorder = make_manager(emu)
    token = connect(manager, emu)
    manager.oauth.revoke(token.refresh_token)
    with pytest.raises(ReauthorizationRequired) as info:
        manager.refresh("u1", stale=token)
    assert "expired access/refresh token" in info.value.reason
    assert token.refresh_token not in str(info.value)
    record = manager.record("u1")
    assert record.needs_reauth and record.token == token  # row kept
    assert record.reason == info.value.reason
    assert recorder.names()[-1] == "needs_reauth"
    assert recorder.seen[-1].reason == info.value.reason
    calls = emu.calls("refresh_token")
    for _ in range(5):  # no retry storm: the flag answers
        with pytest.raises(ReauthorizationRequired):
            manager.valid_token("u1")
        with pytest.raises(ReauthorizationRequired):
            manager.refresh("u1", stale=token)
    assert emu.calls("refresh_token") == calls == 1
    # A new login clears the flag.
    manager.save("u1", issue(emu), revoke_superseded=False)
    assert manager.record("u1").status == "active"
    manager.valid_token("u1")


def test_no_refresh_token_means_reauth(emu):
    manager, _ = make_manager(emu)
    token = Token.from_response(emu.issue_tokens(refresh=False))
    manager.save("u1", token, revoke_superseded=False)
    with pytest.raises(ReauthorizationRequired, match="refresh_token scope"):
        manager.refresh("u1", stale=token)
    assert emu.calls("refresh_token") == 0


def test_invalid_client_is_an_app_error_not_a_user_one(emu):
    manager, recorder = make_manager(emu)
    token = connect(manager, emu)
    emu.apps["web"].client_secret = "rotated-secret"
    with pytest.raises(InvalidClientError):
        manager.refresh("u1", stale=token)
    record = manager.record("u1")
    assert record.status == "active" and record.token == token
    assert "needs_reauth" not in recorder.names()


def test_missing_connection(emu):
    manager, _ = make_manager(emu)
    with pytest.raises(TokenNotFoundError):
        manager.valid_token("nobody")
    with pytest.raises(TokenNotFoundError):
        manager.refresh("nobody")
    assert manager.get("nobody") is None


# Faults ------------------------------------------------------------------------------
def test_503_three_times_then_200(emu):
    manager, _ = make_manager(emu, retry=RetryPolicy(attempts=4, base_delay=0.0))
    token = connect(manager, emu)
    emu.inject_fault(
        Fault(kind="status", status=503, count=3, grant_type="refresh_token")
    )
    renewed = manager.refresh("u1", stale=token)
    assert renewed.access_token != token.access_token
    assert manager.get("u1") == renewed
    assert emu.reuse_detected == 0


def test_503_beyond_the_retries_leaves_the_record_untouched(emu):
    manager, recorder = make_manager(emu)
    token = connect(manager, emu)
    emu.inject_fault(
        Fault(
            kind="status",
            status=503,
            count=3,
            grant_type="refresh_token",
            retry_after=0,
        )
    )
    with pytest.raises(SalesforceUnavailableError) as info:
        manager.refresh("u1", stale=token)
    assert info.value.status_code == 503
    record = manager.record("u1")
    assert (record.status, record.token) == ("active", token)
    # Salesforce answered every attempt: nothing is in flight, the marker is cleared.
    assert (record.refresh_started_at, record.refresh_digest) == (None, None)
    assert "needs_reauth" not in recorder.names()
    # Salesforce is back: the untouched refresh token still works.
    assert manager.refresh("u1", stale=token).access_token != token.access_token


def test_hang_past_the_timeout(emu):
    manager, _ = make_manager(
        emu,
        retry=RetryPolicy(attempts=2, base_delay=0.0),
        app_overrides={"timeout": 0.3},
    )
    token = connect(manager, emu)
    emu.inject_fault(Fault(kind="hang", seconds=5, count=2, grant_type="refresh_token"))
    started = time.monotonic()
    with pytest.raises(SalesforceUnavailableError):
        manager.refresh("u1", stale=token)
    assert time.monotonic() - started < 3
    record = manager.record("u1")
    assert (record.status, record.token) == ("active", token)
    # The last attempt may still be in flight at Salesforce: its marker stays, and no
    # second refresh presents the same refresh token within the window (issue 12.1).
    assert record.refresh_digest == refresh_digest(token.refresh_token)
    calls = emu.calls("refresh_token")
    with pytest.raises(SalesforceUnavailableError, match="in flight"):
        manager.refresh("u1", stale=token)
    assert emu.calls("refresh_token") == calls
    age_marker(manager.store, "u1", manager.refresh_window)  # the window has passed
    assert manager.refresh("u1", stale=token).access_token != token.access_token


def test_dropped_rotation_ends_in_needs_reauth_with_a_clear_reason(emu):
    manager, recorder = make_manager(emu)
    token = connect(manager, emu)
    emu.inject_fault(Fault(kind="drop_after_rotation"))
    with pytest.raises(ReauthorizationRequired) as info:
        manager.refresh("u1", stale=token)
    reason = info.value.reason
    assert "HTTP 502" in reason and "rotation" in reason
    assert manager.record("u1").needs_reauth
    assert recorder.names()[-1] == "needs_reauth"
    calls = emu.calls("refresh_token")
    with pytest.raises(ReauthorizationRequired):
        manager.valid_token("u1")
    assert emu.calls("refresh_token") == calls  # no silent reuse of the dead token


def test_unsaved_renewal_is_kept_and_written_later(emu, caplog, monkeypatch):
    monkeypatch.setattr(manager_base, "SAVE_RETRY_PAUSES", (0.0, 0.0))
    manager, _ = make_manager(emu)
    token = connect(manager, emu)
    store = manager.store
    real_save = store.save
    failures = iter([True] * 3)  # the save and both of its retries

    def flaky_save(*args, **kwargs):
        if next(failures, False):
            raise StorageError("store down")
        return real_save(*args, **kwargs)

    store.save = flaky_save  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        renewed = manager.refresh("u1", stale=token)
    assert renewed.refresh_token != token.refresh_token
    assert manager.valid_token("u1") == renewed  # served from memory meanwhile
    assert store.get("u1").token == token
    # Next renewal writes the pending token first, then sees it is already newer.
    assert manager.refresh("u1", stale=token) == renewed
    assert store.get("u1").token == renewed
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


# Re-mint ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "app, grant, wire",
    [
        ("jwt", "jwt_bearer", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("cc", "client_credentials", "client_credentials"),
    ],
)
def test_server_to_server_connections_are_reminted(emu, app, grant, wire):
    manager, recorder = make_manager(emu, app=app)
    token = manager.mint("svc", grant=grant)
    assert manager.record("svc").grant == grant
    with manager.client("svc", transport=emu.transport()) as client:
        emu.expire_access_tokens()
        assert client.get(REST).status_code == 200
    assert emu.calls(wire) == 2
    assert emu.calls("refresh_token") == 0
    assert manager.get("svc").access_token != token.access_token
    assert recorder.names() == ["token_obtained", "token_refreshed"]
    with pytest.raises(ValueError):
        manager.mint("svc", grant="authorization_code")


JWT_WIRE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_obtain_mints_once_for_50_threads_sharing_a_store(emu):
    # 50 threads, each with its own manager (so only the store's lock is shared),
    # ask for a server-to-server token that was never minted.
    store = InMemoryTokenStore()
    managers = [make_manager(emu, store, app="jwt")[0] for _ in range(50)]
    barrier = threading.Barrier(50)
    tokens: list[Token] = []

    def first_request(manager: TokenManager) -> None:
        barrier.wait()
        tokens.append(manager.obtain("svc", grant="jwt_bearer"))

    threads = [threading.Thread(target=first_request, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emu.calls(JWT_WIRE) == 1
    assert len({t.access_token for t in tokens}) == 1 and len(tokens) == 50
    assert store.get("svc").grant == "jwt_bearer"


@pytest.mark.anyio
async def test_obtain_mints_once_for_50_coroutines(emu):
    manager, recorder = make_async_manager(emu, app="cc")
    tokens: list[Token] = []

    async def first_request() -> None:
        tokens.append(await manager.obtain("svc", grant="client_credentials"))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(first_request)
    assert emu.calls("client_credentials") == 1
    assert len({t.access_token for t in tokens}) == 1
    assert recorder.names() == ["token_obtained"]
    # Served from memory afterwards; a flagged connection is minted again, not refused.
    assert (await manager.obtain("svc", grant="client_credentials")) == tokens[0]
    record = await manager.record("svc")
    await manager.store.mark_needs_reauth(
        "svc", "test", expected_version=record.version
    )
    other_worker, _ = make_async_manager(emu, manager.store, app="cc")
    again = await other_worker.obtain("svc", grant="client_credentials")
    assert again.access_token != tokens[0].access_token
    assert emu.calls("client_credentials") == 2


# Save / revoke ------------------------------------------------------------------------
def test_reconnecting_revokes_the_superseded_refresh_token(emu):
    manager, _ = make_manager(emu)
    old = connect(manager, emu)
    manager.save("u1", issue(emu))
    with pytest.raises(Exception, match="invalid_grant"):
        manager.oauth.refresh(old)


def test_revoke_disconnects_even_when_salesforce_fails(emu):
    manager, recorder = make_manager(emu)
    token = connect(manager, emu)
    assert manager.revoke("u1") is True
    assert manager.get("u1") is None
    with pytest.raises(Exception, match="invalid_grant"):
        manager.oauth.refresh(token)
    connect(manager, emu, key="u2")
    emu.inject_fault(
        Fault(kind="status", status=503, count=5, path="/services/oauth2/revoke")
    )
    assert manager.revoke("u2") is False
    assert manager.get("u2") is None
    with pytest.raises(TokenNotFoundError):
        manager.valid_token("u2")
    assert recorder.names().count("token_revoked") == 2
    assert manager.revoke("never") is False


def test_lease_shorter_than_a_refresh_is_refused(emu):
    class ShortLease(InMemoryTokenStore):
        lock_timeout = 10.0

    with pytest.raises(ConfigurationError) as info:
        make_manager(emu, ShortLease(), retry=RetryPolicy(attempts=3))
    assert info.value.setting == "lock_timeout"
    make_manager(
        emu, ShortLease(), retry=RetryPolicy(attempts=1), app_overrides={"timeout": 5}
    )


# Async specifics -------------------------------------------------------------------------
@pytest.mark.anyio
async def test_50_connections_refresh_in_parallel(emu):
    manager, _ = make_async_manager(emu)
    stale = {}
    for n in range(50):
        stale[n] = Token.from_response(emu.issue_tokens())
        await manager.save(f"u{n}", stale[n], revoke_superseded=False)
    emu.inject_fault(
        Fault(kind="latency", seconds=0.4, count=50, grant_type="refresh_token")
    )
    windows: list[tuple[float, float]] = []

    async def renew(n: int) -> None:
        start = time.monotonic()
        await manager.refresh(f"u{n}", stale=stale[n])
        windows.append((start, time.monotonic()))

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(renew, n)
    elapsed = time.monotonic() - started
    assert emu.calls("refresh_token") == 50
    assert elapsed < 50 * 0.4 / 5, elapsed  # serialised would take 20 s
    latest_start = max(s for s, _ in windows)
    earliest_end = min(e for _, e in windows)
    assert latest_start < earliest_end  # every refresh was in flight at one moment


@pytest.mark.anyio
async def test_cancelled_caller_does_not_lose_the_rotated_token(emu):
    manager, _ = make_async_manager(emu)
    token = issue(emu)
    await manager.save("u1", token, revoke_superseded=False)
    emu.inject_fault(Fault(kind="latency", seconds=0.3, grant_type="refresh_token"))
    started = time.monotonic()
    with anyio.move_on_after(0.05):
        await manager.refresh("u1", stale=token)
    # The shielded refresh finished and saved before the cancellation took effect.
    assert time.monotonic() - started >= 0.3
    record = await manager.record("u1")
    assert record.version == 3  # the marker, then the token
    assert record.token.refresh_token != token.refresh_token
    assert await manager.refresh("u1", stale=token) == record.token
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


@pytest.mark.anyio
async def test_async_invalid_grant_and_async_hooks(emu):
    manager, _ = make_async_manager(emu)
    seen: list[str] = []

    async def hook(event: TokenEvent) -> None:
        await anyio.sleep(0)
        seen.append(event.reason)

    manager.events.on_needs_reauth(hook)
    token = issue(emu)
    await manager.save("u1", token, revoke_superseded=False)
    await manager.oauth.revoke(token.refresh_token)
    with pytest.raises(ReauthorizationRequired) as info:
        await manager.refresh("u1", stale=token)
    assert seen == [info.value.reason]
    assert (await manager.record("u1")).needs_reauth
    assert (
        await manager.revoke("u1") is True
    )  # revoke at Salesforce of a dead token is ok
    assert await manager.get("u1") is None


@pytest.mark.anyio
async def test_async_reminted_connection(emu):
    manager, _ = make_async_manager(emu, app="cc")
    first = await manager.mint("svc", grant="client_credentials")
    again = await manager.refresh("svc", stale=first)
    assert again.access_token != first.access_token
    assert await manager.valid_token("svc") == again


# The client as the manager sees it ------------------------------------------------
class PublicSurface:
    """A client offering only what the manager may use: its app, its key cache and
    ``run``; the facade's private flow factories are out of reach."""

    def __init__(self, oauth: SalesforceOAuth) -> None:
        self.app = oauth.app
        self.jwks_cache = oauth.jwks_cache
        self.run = oauth.run


def test_the_manager_builds_every_flow_itself_from_the_public_surface(emu):
    full, _ = make_manager(emu)
    manager = TokenManager(
        PublicSurface(full.oauth), InMemoryTokenStore(), retry=FAST_RETRY
    )
    old = connect(manager, emu)
    current = manager.save("u1", issue(emu)).token  # revokes the superseded grant
    with pytest.raises(Exception, match="invalid_grant"):
        full.oauth.refresh(old)
    assert manager.refresh("u1").access_token != current.access_token
    assert manager.identity("u1").user_id
    assert manager.userinfo("u1")
    assert manager.revoke("u1") is True
    jwt, _ = make_manager(emu, app="jwt")
    minter = TokenManager(PublicSurface(jwt.oauth), InMemoryTokenStore())
    assert minter.mint("svc", grant="jwt_bearer").access_token
