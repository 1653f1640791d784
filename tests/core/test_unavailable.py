"""Salesforce unreachable or failing: always the typed ``SalesforceUnavailableError``
(issue 10 item 6), never a raw ``httpx.ConnectError`` / ``ReadTimeout``.

Every public method of ``SalesforceOAuth`` / ``AsyncSalesforceOAuth`` and every token
manager entry point (including ``SalesforceAuth``'s refresh after a 401, identity and
userinfo) is driven against three failures: connection refused, read timeout, and a 503
maintenance page. Back-off sleeps are skipped so the retries cost no time.
"""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from sfoauth_core.exceptions import InsecureFlowWarning, SalesforceUnavailableError
from sfoauth_core.http import _drivers
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/limits"


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _maintenance(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, html="<html>down for maintenance</html>")


FAILURES: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "refused": _refused,
    "timeout": _timeout,
    "503": _maintenance,
}


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(_drivers.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(_drivers.anyio, "sleep", no_sleep)


@pytest.fixture
def emu() -> SalesforceEmulator:
    return SalesforceEmulator()


def _token(emu: SalesforceEmulator, app: str = "web") -> Token:
    return Token.from_response(emu.issue_tokens(app))


# name -> (emulated app, call on the OAuth client)
FACADE: dict[str, tuple[str, Callable[[Any, Token], Any]]] = {
    "exchange_code": ("web", lambda o, t: o.exchange_code("c", code_verifier="v" * 43)),
    "refresh": ("web", lambda o, t: o.refresh(t)),
    "revoke": ("web", lambda o, t: o.revoke(t)),
    "introspect": ("web", lambda o, t: o.introspect(t)),
    "userinfo": ("web", lambda o, t: o.userinfo(t)),
    "identity": ("web", lambda o, t: o.identity(t)),
    "openid_configuration": ("web", lambda o, t: o.openid_configuration()),
    "keys": ("web", lambda o, t: o.keys()),
    "password": ("web", lambda o, t: o.password("jane@acme.com", "pw")),
    "client_credentials": ("cc", lambda o, t: o.client_credentials()),
    "jwt_bearer": ("jwt", lambda o, t: o.jwt_bearer()),
    "start_device_flow": ("device", lambda o, t: o.start_device_flow()),
    "asset_token": ("asset", lambda o, t: o.asset_token(t, device_id="d-1")),
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("name", FACADE)
def test_every_sync_facade_method_raises_the_typed_error(emu, name, failure):
    app_name, call = FACADE[name]
    transport = httpx.MockTransport(FAILURES[failure])
    oauth = SalesforceOAuth(
        emu.connected_app(app_name), http_client=httpx.Client(transport=transport)
    )
    with oauth, warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureFlowWarning)
        with pytest.raises(SalesforceUnavailableError) as caught:
            call(oauth, _token(emu, app_name))
    if failure == "503":
        assert caught.value.status_code == 503


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("name", FACADE)
def test_every_async_facade_method_raises_the_typed_error(emu, name, failure):
    app_name, call = FACADE[name]
    transport = httpx.MockTransport(FAILURES[failure])

    async def main() -> None:
        oauth = AsyncSalesforceOAuth(
            emu.connected_app(app_name),
            http_client=lambda: httpx.AsyncClient(transport=transport),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureFlowWarning)
            with pytest.raises(SalesforceUnavailableError):
                await call(oauth, _token(emu, app_name))
        await oauth.aclose()

    anyio.run(main)


def _sync_manager(
    emu: SalesforceEmulator, failure: str, app: str = "web"
) -> TokenManager:
    transport = httpx.MockTransport(FAILURES[failure])
    oauth = SalesforceOAuth(
        emu.connected_app(app), http_client=httpx.Client(transport=transport)
    )
    # A tiny refresh window: each entry point below makes its own attempt instead of
    # waiting out the marker of the previous one's possibly-in-flight refresh.
    return TokenManager(oauth, InMemoryTokenStore(), refresh_window=1e-6)


def _async_manager(
    emu: SalesforceEmulator, failure: str, app: str = "web"
) -> AsyncTokenManager:
    transport = httpx.MockTransport(FAILURES[failure])
    oauth = AsyncSalesforceOAuth(
        emu.connected_app(app),
        http_client=lambda: httpx.AsyncClient(transport=transport),
    )
    return AsyncTokenManager(oauth, AsyncInMemoryTokenStore(), refresh_window=1e-6)


@pytest.mark.parametrize("failure", FAILURES)
def test_sync_manager_entry_points(emu, failure):
    manager = _sync_manager(emu, failure)
    token = _token(emu)
    manager.save("u1", token, revoke_superseded=False)
    before = manager.record("u1")
    for call in (
        lambda: manager.refresh("u1"),
        lambda: manager.renew("u1", stale=token),
        lambda: manager.identity("u1"),
        lambda: manager.userinfo("u1"),
    ):
        with pytest.raises(SalesforceUnavailableError):
            call()
    after = manager.record("u1")  # nothing flagged, nothing lost
    assert (after.token, after.status) == (before.token, before.status)

    # A known expiry makes valid_token refresh: same typed error.
    due = _token(emu).with_expiry(time.time() - 1)
    manager.save("u2", due, revoke_superseded=False)
    manager.forget("u2")
    with pytest.raises(SalesforceUnavailableError):
        manager.valid_token("u2")

    # SalesforceAuth's refresh path: the API answers 401, the refresh cannot get out.
    emu.expire_access_tokens()
    with manager.client("u1", transport=emu.transport()) as sf:
        with pytest.raises(SalesforceUnavailableError):
            sf.get(REST)

    # Disconnecting still removes the local token and says Salesforce did not confirm.
    assert manager.revoke("u1") is False
    assert manager.record("u1") is None

    minted = _sync_manager(emu, failure, app="cc")
    with pytest.raises(SalesforceUnavailableError):
        minted.obtain("cc", grant="client_credentials")
    jwt = _sync_manager(emu, failure, app="jwt")
    with pytest.raises(SalesforceUnavailableError):
        jwt.mint("jwt", grant="jwt_bearer")


@pytest.mark.parametrize("failure", FAILURES)
def test_async_manager_entry_points(emu, failure):
    manager = _async_manager(emu, failure)
    token = _token(emu)

    async def main() -> None:
        await manager.save("u1", token, revoke_superseded=False)
        for call in (
            lambda: manager.refresh("u1"),
            lambda: manager.renew("u1", stale=token),
            lambda: manager.identity("u1"),
            lambda: manager.userinfo("u1"),
        ):
            with pytest.raises(SalesforceUnavailableError):
                await call()
        emu.expire_access_tokens()
        async with await manager.client("u1", transport=emu.async_transport()) as sf:
            with pytest.raises(SalesforceUnavailableError):
                await sf.get(REST)
        assert await manager.revoke("u1") is False
        assert await manager.record("u1") is None
        minted = _async_manager(emu, failure, app="cc")
        with pytest.raises(SalesforceUnavailableError):
            await minted.obtain("cc", grant="client_credentials")

    anyio.run(main)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.loopback
def test_a_real_refused_connection_is_typed(emu):
    # Failed before: httpx.ConnectError reached the caller of the code exchange (a
    # flow without retries) as a bare TransportError, not as unavailability.
    port = _closed_port()
    app = emu.connected_app("web").__class__(
        client_id="3MVG9.Example",
        client_secret="s",
        login_url=f"http://127.0.0.1:{port}",
        allow_loopback=True,
        redirect_uri="http://localhost:8000/salesforce/callback",
    )
    with SalesforceOAuth(app) as oauth:
        with pytest.raises(SalesforceUnavailableError, match="ConnectError"):
            oauth.exchange_code("c", code_verifier="v" * 43)
