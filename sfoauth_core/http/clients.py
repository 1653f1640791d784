"""The one default HTTP client: what sfoauth builds when the caller brings none.

``SalesforceOAuth``/``AsyncSalesforceOAuth`` without ``http_client``, ``sfoauth_django``'s
default ``get_http_client`` and ``sfoauth_fastapi``'s shared connection pool all come
from here, so they behave the same:

* the app's timeout, TLS verification on (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured),
  redirects never followed;
* **proxies**: the one the environment names for the app's login URL (``HTTPS_PROXY`` /
  ``HTTP_PROXY`` / ``ALL_PROXY``, skipped for hosts in ``NO_PROXY``, as read by
  :func:`urllib.request.getproxies`) carries every call to Salesforce; loopback hosts
  (the emulator) are never proxied. Pass your own client or transport to decide
  otherwise (a transport you pass is used as is).
"""

from __future__ import annotations

import urllib.request
from typing import Any, Literal, overload
from urllib.parse import urlsplit

import httpx

from ..config import ConnectedApp
from ..hosts import is_loopback_host

__all__ = ["USER_AGENT", "build_http_client", "build_transport", "environment_proxy"]

USER_AGENT = "sfoauth"


def environment_proxy(url: str) -> str | None:
    """The proxy URL the environment names for ``url``, or ``None`` (no proxy, a host
    listed in ``NO_PROXY``, or a loopback host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or is_loopback_host(host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


@overload
def build_transport(
    app: ConnectedApp, *, asynchronous: Literal[False]
) -> httpx.HTTPTransport: ...
@overload
def build_transport(
    app: ConnectedApp, *, asynchronous: Literal[True]
) -> httpx.AsyncHTTPTransport: ...
def build_transport(
    app: ConnectedApp, *, asynchronous: bool
) -> httpx.HTTPTransport | httpx.AsyncHTTPTransport:
    """A connection pool for calls to ``app``'s Salesforce (proxied as the module says)."""
    options: dict[str, Any] = {
        "verify": True,
        "proxy": environment_proxy(app.login_url),
    }
    if asynchronous:
        return httpx.AsyncHTTPTransport(**options)
    return httpx.HTTPTransport(**options)


@overload
def build_http_client(
    app: ConnectedApp,
    *,
    asynchronous: Literal[False],
    transport: httpx.BaseTransport | None = None,
    user_agent: str = USER_AGENT,
    **options: Any,
) -> httpx.Client: ...
@overload
def build_http_client(
    app: ConnectedApp,
    *,
    asynchronous: Literal[True],
    transport: httpx.AsyncBaseTransport | None = None,
    user_agent: str = USER_AGENT,
    **options: Any,
) -> httpx.AsyncClient: ...
def build_http_client(
    app: ConnectedApp,
    *,
    asynchronous: bool,
    transport: Any = None,
    user_agent: str = USER_AGENT,
    **options: Any,
) -> httpx.Client | httpx.AsyncClient:
    """An httpx client for ``app``: its timeout, TLS verification, no redirects, the
    environment's proxy (through :func:`build_transport` when no ``transport`` is
    given). More keyword arguments (``base_url``, ``auth``...) go to httpx."""
    if transport is None:
        transport = build_transport(app, asynchronous=asynchronous)  # type: ignore[call-overload]
    kwargs: dict[str, Any] = {
        "timeout": httpx.Timeout(app.timeout),
        "follow_redirects": False,
        "headers": {"User-Agent": user_agent},
        # The transport decides on proxies: httpx must not mount others from the env.
        "trust_env": False,
        "transport": transport,
        **options,
    }
    return httpx.AsyncClient(**kwargs) if asynchronous else httpx.Client(**kwargs)
