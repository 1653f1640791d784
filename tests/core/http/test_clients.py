"""The one default HTTP client builder (issue 11.3): timeout, no redirects, and the
environment's proxy for the login URL; loopback hosts are never proxied."""

from __future__ import annotations

import httpcore
import httpx
import pytest

from sfoauth_core import ConnectedApp, SalesforceOAuth
from sfoauth_core.http.clients import (
    build_http_client,
    build_transport,
    environment_proxy,
)

PROXY = "http://proxy.corp.example:3128"


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", PROXY)


def pool(transport: httpx.HTTPTransport) -> object:
    return transport._pool  # the httpcore pool: a proxy pool when proxied


def test_environment_proxy(proxied: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert environment_proxy("https://login.salesforce.com") == PROXY
    assert environment_proxy("http://127.0.0.1:8000") is None  # the emulator
    monkeypatch.setenv("NO_PROXY", ".salesforce.com")
    assert environment_proxy("https://login.salesforce.com") is None
    assert environment_proxy("https://acme.my.site.com") == PROXY


def test_default_clients_use_it(proxied: None) -> None:
    app = ConnectedApp("3MVG9Example", timeout=7)
    client = build_http_client(app, asynchronous=False)
    assert isinstance(client._transport, httpx.HTTPTransport)
    assert isinstance(pool(client._transport), httpcore.HTTPProxy)
    assert client.timeout == httpx.Timeout(7) and client.follow_redirects is False
    assert not client._mounts  # httpx mounts nothing else from the environment
    oauth = SalesforceOAuth(app)  # the core's own default client is the same one
    assert isinstance(pool(oauth.http_client._transport), httpcore.HTTPProxy)
    local = ConnectedApp(
        "3MVG9Example", login_url="http://127.0.0.1:1", allow_loopback=True
    )
    assert isinstance(
        pool(build_transport(local, asynchronous=False)), httpcore.ConnectionPool
    )
    assert not isinstance(
        pool(build_transport(local, asynchronous=False)), httpcore.HTTPProxy
    )
    given = httpx.MockTransport(lambda request: httpx.Response(204))
    assert (
        build_http_client(app, asynchronous=False, transport=given)._transport is given
    )
