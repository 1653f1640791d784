"""Salesforce refuses a refresh while another refresh of the same refresh token is being
processed (reference 15.1: ``invalid_grant`` / ``expired authorization code``).

For the token manager that answer means "someone else is refreshing right now", never a
dead grant: it waits, re-reads the store, tries again within a bound, and never marks
the connection for it. The other refresher here is *not* sfoauth: an outside client
holding the same refresh token, talking to the emulator served on a loopback port.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import anyio
import httpx
import pytest

from sfoauth_core.exceptions import (
    ReauthorizationRequired,
    RefreshInProgressError,
    SalesforceUnavailableError,
)
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.manager import _base as manager_base
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

pytestmark = pytest.mark.loopback

KEY = "00DXX0000001abcEAA:005XX000001xyzQAA"
WINDOW = 0.6  # how long the emulator takes to process a refresh


@pytest.fixture
def served():
    emu = SalesforceEmulator()
    emu.apps["web"].refresh_processing_seconds = WINDOW
    with emu.serve() as base:
        yield emu, base
    for manager in _MANAGERS:
        manager.oauth.close()
    _MANAGERS.clear()


_MANAGERS: list[TokenManager] = []


def _seed(emu: SalesforceEmulator, base: str) -> Token:
    body = emu.issue_tokens()
    with emu.state.lock:  # refreshes answer the served instance
        emu.state.refresh_tokens[body["refresh_token"]].instance_url = base
    return replace(Token.from_response(body), instance_url=base)


def _outside_refresh(
    emu: SalesforceEmulator, base: str, token: Token
) -> threading.Thread:
    """Another client (not sfoauth) refreshing the same refresh token right now."""
    web = emu.apps["web"]
    answers: list[int] = []

    def run() -> None:
        r = httpx.post(
            f"{base}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token.refresh_token or "",
                "client_id": web.client_id,
                "client_secret": web.client_secret or "",
            },
            timeout=10,
        )
        answers.append(r.status_code)

    thread = threading.Thread(target=run)
    thread.answers = answers  # type: ignore[attr-defined]
    thread.start()
    deadline = time.monotonic() + 5
    while not emu.state.refreshes_in_flight:  # the outside refresh is being processed
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return thread


def _sync_manager(emu: SalesforceEmulator, base: str) -> TokenManager:
    app = emu.connected_app("web", login_url=base)
    manager = TokenManager(SalesforceOAuth(app), InMemoryTokenStore())
    _MANAGERS.append(manager)
    return manager


def test_the_facade_reports_it_as_its_own_error(served):
    emu, base = served
    token = _seed(emu, base)
    outside = _outside_refresh(emu, base, token)
    with SalesforceOAuth(emu.connected_app("web", login_url=base)) as oauth:
        with pytest.raises(RefreshInProgressError):
            oauth.refresh(token)
    outside.join()
    assert emu.concurrent_refresh_rejections == 1


def test_manager_waits_and_retries_while_an_outside_client_refreshes(served):
    emu, base = served
    token = _seed(emu, base)
    manager = _sync_manager(emu, base)
    manager.save(KEY, token, revoke_superseded=False)
    outside = _outside_refresh(emu, base, token)
    renewed = manager.refresh(KEY, stale=token.access_token)
    outside.join()
    assert outside.answers == [200]  # type: ignore[attr-defined]
    assert emu.concurrent_refresh_rejections >= 1
    assert renewed.access_token != token.access_token
    record = manager.store.get(KEY)
    assert record is not None and not record.needs_reauth
    assert record.token.access_token == renewed.access_token
    assert emu.reuse_detected == 0


def test_async_manager_waits_and_retries_too(served):
    emu, base = served
    token = _seed(emu, base)
    app = emu.connected_app("web", login_url=base)

    async def main() -> Token:
        manager = AsyncTokenManager(
            AsyncSalesforceOAuth(app), AsyncInMemoryTokenStore()
        )
        await manager.save(KEY, token, revoke_superseded=False)
        outside = _outside_refresh(emu, base, token)
        try:
            return await manager.refresh(KEY, stale=token.access_token)
        finally:
            outside.join()
            await manager.oauth.aclose()

    renewed = anyio.run(main)
    assert renewed.access_token != token.access_token
    assert emu.concurrent_refresh_rejections >= 1


def test_the_wait_is_bounded_and_the_connection_is_kept(served, monkeypatch):
    emu, base = served
    emu.apps["web"].refresh_processing_seconds = 5.0  # longer than the manager waits
    monkeypatch.setattr(manager_base, "CONCURRENT_REFRESH_PAUSES", (0.05, 0.05))
    token = _seed(emu, base)
    manager = _sync_manager(emu, base)
    manager.save(KEY, token, revoke_superseded=False)
    outside = _outside_refresh(emu, base, token)
    started = time.monotonic()
    with pytest.raises(SalesforceUnavailableError) as caught:
        manager.refresh(KEY, stale=token.access_token)
    assert time.monotonic() - started < 3.0
    assert isinstance(caught.value.__cause__, RefreshInProgressError)
    assert emu.concurrent_refresh_rejections == 2  # the first try and one more
    record = manager.store.get(KEY)
    assert record is not None and not record.needs_reauth
    assert record.token.refresh_token == token.refresh_token
    outside.join()


def test_with_rotation_an_outside_refresher_holding_the_same_token_kills_the_grant(
    served,
):
    """The documented limit: with rotation, the outside client's refresh retires the
    shared refresh token, so the retry after the wait replays it and Salesforce
    revokes the grant. No client can avoid that; the connection ends as needs_reauth
    with Salesforce's reason."""
    emu, base = served
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    token = _seed(emu, base)
    manager = _sync_manager(emu, base)
    manager.save(KEY, token, revoke_superseded=False)
    outside = _outside_refresh(emu, base, token)
    with pytest.raises(ReauthorizationRequired):
        manager.refresh(KEY, stale=token.access_token)
    outside.join()
    assert emu.reuse_detected == 1
    record = manager.store.get(KEY)
    assert record is not None and record.needs_reauth


def test_a_sibling_that_lost_its_lock_is_waited_for_not_raced(served):
    """Found by the soak: a worker whose row lock died (session terminated, lease
    over) keeps refreshing while another takes the lock. The second one is refused
    (refresh in progress) and must wait for the first one's write, not present the
    refresh token again once the first refresh rotated it (that revokes the grant)."""
    emu, base = served
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    token = _seed(emu, base)
    manager = _sync_manager(emu, base)
    manager.save(KEY, token, revoke_superseded=False)
    store = manager.store

    def sibling() -> None:  # refreshes, then writes slowly (a loaded worker)
        with SalesforceOAuth(emu.connected_app("web", login_url=base)) as oauth:
            renewed = oauth.refresh(token)
        time.sleep(1.2)
        record = store.get(KEY)
        assert record is not None
        store.save(KEY, renewed, expected_version=record.version)

    other = threading.Thread(target=sibling)
    other.start()
    deadline = time.monotonic() + 5
    while not emu.state.refreshes_in_flight:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    got = manager.refresh(KEY, stale=token.access_token)
    other.join()
    assert emu.reuse_detected == 0
    assert emu.concurrent_refresh_rejections == 1
    record = store.get(KEY)
    assert record is not None and not record.needs_reauth
    assert got.access_token == record.token.access_token != token.access_token
