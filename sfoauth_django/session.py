"""``request.salesforce``: lazy access to the current user's (or a named) connection.

Nothing is read until an attribute is used. With a valid token in the in-process cache,
``request.salesforce.token`` costs no database query and no HTTP call. The object is
falsy when the user has no usable connection; ``SalesforceMiddleware`` puts one on every
request as ``request.salesforce`` (see :mod:`sfoauth_django.middleware`).

Sync views use the properties (``.token``, ``.client``, ``.identity``); async views
await the ``a``-prefixed twins (``await request.salesforce.atoken()``).
"""

from __future__ import annotations

from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.http import HttpRequest

from sfoauth_core.exceptions import ReauthorizationRequired, TokenNotFoundError
from sfoauth_core.tokens import Identity, Token

from . import _runtime
from .adapter import get_adapter
from .conf import sfoauth_settings
from .models import connection_key

__all__ = [
    "ConnectionNeedsReauthorization",
    "NoSalesforceConnectionError",
    "SalesforceSession",
]


class ConnectionNeedsReauthorization(ReauthorizationRequired):
    """:class:`~sfoauth_core.exceptions.ReauthorizationRequired` raised through
    ``request.salesforce``: catch either. Templates render it as an empty value
    (``silent_variable_failure``) instead of crashing the page; the session is falsy
    from then on, and decorated views (or ``SalesforceMiddleware``) send the user to the
    login interstitial."""

    silent_variable_failure = True


class NoSalesforceConnectionError(TokenNotFoundError):
    """:class:`~sfoauth_core.exceptions.TokenNotFoundError` raised through a falsy
    ``request.salesforce`` (the user has no connection). Templates render it as an empty
    value (``silent_variable_failure``): ``{{ request.salesforce.instance_url }}`` is
    blank for a user without a connection, as it was when the attribute was ``None``."""

    silent_variable_failure = True


_UNRESOLVED: Any = object()


def _user_pk(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user.pk


async def _auser_pk(request: HttpRequest) -> Any:
    auser = getattr(request, "auser", None)
    if auser is not None:  # Django 5.0+
        user = await auser()
        return user.pk if user.is_authenticated else None
    return await sync_to_async(_user_pk)(request)


class SalesforceSession:
    """One request's view of a Salesforce connection.

    Args:
        request: the request (its user picks the connection).
        connection: the name of a ``SFOAUTH["CONNECTIONS"]`` entry instead of the user's
            own connection.

    Raises:
        NoSalesforceConnectionError: (a ``TokenNotFoundError``, from ``.token`` and friends)
            there is no connection; templates render it as an empty value.
        ReauthorizationRequired: Salesforce refused the grant; send the user to login.
        SalesforceUnavailableError: a needed refresh failed after retries.
    """

    def __init__(self, request: HttpRequest, *, connection: str | None = None) -> None:
        self._request = request
        self.connection = connection
        self._key: str | None = _UNRESOLVED
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._identity: Identity | None = None
        self._reauth = False
        self.known_instance_url: str | None = None

    def __repr__(self) -> str:
        key = "unresolved" if self._key is _UNRESOLVED else repr(self._key)
        return f"<SalesforceSession connection={self.connection!r} key={key}>"

    # Which connection ------------------------------------------------------------------
    @property
    def key(self) -> str | None:
        """The connection's store key, or ``None`` when the user has none."""
        if self._key is _UNRESOLVED:
            if self.connection is not None:
                self._key = connection_key(self.connection)
            else:
                pk = _user_pk(self._request)
                self._key = None if pk is None else _runtime.lookup_user_key(pk)
        return self._key

    async def akey(self) -> str | None:
        """Async twin of :attr:`key`."""
        if self._key is _UNRESOLVED:
            if self.connection is not None:
                self._key = connection_key(self.connection)
            else:
                pk = await _auser_pk(self._request)
                self._key = None if pk is None else await _runtime.alookup_user_key(pk)
        return self._key

    def __bool__(self) -> bool:
        """Truthy only with a usable connection: ``False`` without one, and when it
        needs re-authorization (flagged, or refused during this request)."""
        return not self._reauth and self.key is not None

    @property
    def needs_reauth(self) -> bool:
        """``True`` once Salesforce refused the connection during this request."""
        return self._reauth

    def _refused(self, exc: ReauthorizationRequired) -> ConnectionNeedsReauthorization:
        self._reauth = True
        if isinstance(exc, ConnectionNeedsReauthorization):
            return exc
        return ConnectionNeedsReauthorization(str(exc), reason=exc.reason)

    def _seen(self, token: Token) -> Token:
        self.known_instance_url = token.instance_url
        return token

    def _require_key(self, key: str | None) -> str:
        if key is None:
            raise NoSalesforceConnectionError("the user has no Salesforce connection")
        return key

    # The token -------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        """A valid access token (cached in memory; refreshed when needed).

        Raises:
            ConnectionNeedsReauthorization: Salesforce refused the connection.
        """
        key = self._require_key(self.key)
        manager = _runtime.manager(self.connection)
        try:
            if self.connection is None:
                return self._seen(manager.valid_token(key))
            flow, _app = sfoauth_settings.connection_config(self.connection)
            return self._seen(manager.obtain(key, grant=flow))
        except ReauthorizationRequired as exc:
            raise self._refused(exc) from exc

    async def atoken(self) -> Token:
        """Async twin of :attr:`token`."""
        key = self._require_key(await self.akey())
        manager = _runtime.async_manager(self.connection)
        try:
            if self.connection is None:
                return self._seen(await manager.valid_token(key))
            flow, _app = sfoauth_settings.connection_config(self.connection)
            return self._seen(await manager.obtain(key, grant=flow))
        except ReauthorizationRequired as exc:
            raise self._refused(exc) from exc

    @property
    def instance_url(self) -> str:
        """The org's instance URL (``https://acme.my.salesforce.com``)."""
        return self.token.instance_url or ""

    async def ainstance_url(self) -> str:
        """Async twin of :attr:`instance_url`."""
        return (await self.atoken()).instance_url or ""

    # Clients ---------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        """An ``httpx.Client`` on the instance URL that adds the token and refreshes it
        once on a 401 ``INVALID_SESSION_ID``. Closed when the response is done."""
        if self._client is None:
            token = self.token
            manager = _runtime.manager(self.connection)
            client = get_adapter(self._request).get_http_client(
                manager.oauth.app, asynchronous=False
            )
            if not isinstance(client, httpx.Client):
                raise TypeError("get_http_client() must return an httpx.Client here")
            client.base_url = httpx.URL(token.instance_url or "")
            client.auth = manager.auth(self._require_key(self.key))
            self._client = client
        return self._client

    async def aclient(self) -> httpx.AsyncClient:
        """Async twin of :attr:`client` (an ``httpx.AsyncClient``)."""
        if self._aclient is None:
            token = await self.atoken()
            manager = _runtime.async_manager(self.connection)
            client = get_adapter(self._request).get_http_client(
                manager.oauth.app, asynchronous=True
            )
            if not isinstance(client, httpx.AsyncClient):
                raise TypeError(
                    "get_http_client() must return an httpx.AsyncClient here"
                )
            client.base_url = httpx.URL(token.instance_url or "")
            client.auth = manager.auth(self._require_key(await self.akey()))
            self._aclient = client
        return self._aclient

    @property
    def identity(self) -> Identity:
        """The identity URL's description of the Salesforce user and org (one call per
        request). A refused token is renewed and the call retried, as for
        :attr:`client`."""
        if self._identity is None:
            self.token  # noqa: B018 - connects (mints) a named connection on first use
            manager = _runtime.manager(self.connection)
            self._identity = manager.identity(self._require_key(self.key))
        return self._identity

    async def aidentity(self) -> Identity:
        """Async twin of :attr:`identity`."""
        if self._identity is None:
            await self.atoken()
            manager = _runtime.async_manager(self.connection)
            self._identity = await manager.identity(
                self._require_key(await self.akey())
            )
        return self._identity

    def close(self) -> None:
        """Close the clients this request opened (the middleware calls it)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
