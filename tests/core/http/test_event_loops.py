"""Async clients never outlive or cross their event loop (issue 10 item 2).

Django under WSGI runs every async view through asgiref's ``async_to_sync``: a new
event loop per request. A process-wide ``httpx.AsyncClient`` reused on the next loop
failed with ``RuntimeError: Event loop is closed`` on the first refresh after an expiry
(its pooled keep-alive connection belonged to the dead loop). These tests run refreshes
over real sockets (the emulator on a loopback port) on successive loops.
"""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest
import trio

from sfoauth_core.flows.web_server import parse_authorization_response
from sfoauth_core.http._loops import PerLoop, current_loop
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore
from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator
from sfoauth_core.tokens import Token

pytestmark = pytest.mark.loopback

REST = "/services/data/v62.0/limits"


@pytest.fixture
def emu(salesforce_emulator_server: SalesforceEmulator) -> SalesforceEmulator:
    return salesforce_emulator_server


def _manager(emu: SalesforceEmulator, **oauth: object) -> AsyncTokenManager:
    return AsyncTokenManager(
        AsyncSalesforceOAuth(emu.connected_app("web"), **oauth),  # type: ignore[arg-type]
        AsyncInMemoryTokenStore(),
    )


def _loopback_token(emu: SalesforceEmulator) -> Token:
    # A login over the loopback port: the token's instance URL is the served one.
    emu.auto_approve = DEFAULT_USERNAME
    app = emu.connected_app(
        "web", redirect_uri="http://localhost:8000/salesforce/callback"
    )
    with SalesforceOAuth(app) as web, httpx.Client() as browser:
        request = web.authorization_url()
        callback = browser.get(request.url).headers["location"]
        code = parse_authorization_response(callback, expected_state=request.state)
        return web.exchange_code(code, code_verifier=request.code_verifier)


async def _api_call(manager: AsyncTokenManager, key: str) -> int:
    async with await manager.client(key) as sf:
        return (await sf.get(REST)).status_code


def test_refreshes_through_async_to_sync_on_successive_loops(emu):
    # Failed before the fix: the second loop's refresh raised "Event loop is closed".
    async_to_sync = pytest.importorskip("asgiref.sync").async_to_sync
    manager = _manager(emu)
    async_to_sync(manager.save)("u1", _loopback_token(emu))
    before = emu.calls("refresh_token")
    for _ in range(4):  # one "request" per loop, each after an expiry
        emu.expire_access_tokens()
        assert async_to_sync(_api_call)(manager, "u1") == 200
    assert emu.calls("refresh_token") - before == 4


def test_each_asyncio_run_gets_its_own_client_closed_with_its_loop(emu):
    oauth = AsyncSalesforceOAuth(emu.connected_app("web"))
    token = Token.from_response(emu.issue_tokens("web"))
    seen: list[httpx.AsyncClient] = []

    async def refresh() -> None:
        nonlocal token
        token = await oauth.refresh(token)
        seen.append(await oauth.current_client())

    for _ in range(3):
        asyncio.run(refresh())
    assert len({id(client) for client in seen}) == 3
    assert all(client.is_closed for client in seen)  # closed by their loop's shutdown
    assert oauth.http_client is None
    assert oauth._per_loop is not None and len(oauth._per_loop) == 0


def test_trio_runs_get_their_own_client_closed_with_the_run(emu):
    oauth = AsyncSalesforceOAuth(emu.connected_app("web"))
    token = Token.from_response(emu.issue_tokens("web"))
    seen: list[httpx.AsyncClient] = []

    async def refresh() -> None:
        nonlocal token
        token = await oauth.refresh(token)
        seen.append(await oauth.current_client())

    trio.run(refresh)
    trio.run(refresh)
    assert seen[0] is not seen[1]
    assert all(client.is_closed for client in seen)


def test_a_factory_is_called_once_per_loop_and_aclose_closes_this_loops_client(emu):
    built: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        built.append(httpx.AsyncClient(timeout=5))
        return built[-1]

    oauth = AsyncSalesforceOAuth(emu.connected_app("web"), http_client=factory)

    async def main() -> None:
        token = Token.from_response(emu.issue_tokens("web"))
        await oauth.refresh(await oauth.refresh(token))
        assert len(built) == 1
        await oauth.aclose()
        assert built[0].is_closed
        await oauth.openid_configuration()  # a new client after aclose
        assert len(built) == 2 and not built[1].is_closed

    asyncio.run(main())
    assert built[1].is_closed


def test_a_client_passed_in_is_used_as_is_and_never_closed(emu):
    async def main() -> None:
        async with httpx.AsyncClient(timeout=5) as mine:
            oauth = AsyncSalesforceOAuth(emu.connected_app("web"), http_client=mine)
            assert oauth.http_client is mine
            assert await oauth.current_client() is mine
            await oauth.openid_configuration()
            await oauth.aclose()
            assert not mine.is_closed

    asyncio.run(main())


def test_per_loop_values_and_the_loop_identity():
    closed: list[int] = []
    counter = iter(range(100))

    async def close(value: int) -> None:
        closed.append(value)

    values: PerLoop[int] = PerLoop(lambda: next(counter), close)

    async def use() -> tuple[int, int]:
        return await values.get(), await values.get()

    assert asyncio.run(use()) == (0, 0)
    assert asyncio.run(use()) == (1, 1)
    assert closed == [0, 1]
    assert len(values) == 0  # nothing kept once a loop ended (no loop leaks)
    assert trio.run(use) == (2, 2)
    assert closed == [0, 1, 2]
    assert len(values) == 0
    # A loop closed without shutting down its async generators: its entry is dropped
    # (unclosed: the loop is gone) at the next use from another loop.
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(use()) == (3, 3)
    loop.close()
    assert len(values) == 1
    assert asyncio.run(use()) == (4, 4)
    assert closed == [0, 1, 2, 4] and len(values) == 0
    with pytest.raises(RuntimeError, match="no asyncio or trio event loop"):
        current_loop()


def test_manager_locks_are_per_loop(emu):
    # A contended anyio lock's waiters are futures of one loop: a lock shared by the
    # loops of two threads is not safe, so each loop gets its own (the store's lock
    # still serializes refreshes across loops and processes).
    manager = _manager(emu)

    async def lock_of() -> object:
        return manager._local_lock("k", asyncio.Lock, scope=current_loop())

    first, second = asyncio.run(lock_of()), asyncio.run(lock_of())
    assert first is not second

    async def hold() -> None:
        async with manager._in_process("k", "refresh"):
            pass

    for _ in range(3):
        asyncio.run(hold())
    gc.collect()
    assert len(manager._loop_locks) == 0  # ended loops take their locks with them
