"""FastAPI dependencies: who the user is, their Salesforce session, callback params.

* :class:`CookieIdentity` — the default ``user_key`` for apps without users: a random id
  in a signed, HttpOnly, SameSite=Lax cookie (demos and single-user tools). Apps with
  their own auth pass their own dependency returning a stable user id instead.
* :class:`SalesforceSession` — what ``Depends(sf.session)`` gives a route: ``.token``,
  ``.instance_url``, ``.client`` (an ``httpx.AsyncClient`` on the instance that adds the
  bearer token and refreshes once on an expired session) and ``await .identity()``.
* :class:`SalesforceCallback` — injects the callback's ``code``, ``state``, ``error``…
  as plain strings (no validation that could echo a code back in a 422 body).
* :class:`ConnectionDependency` — ``Depends(sf.connection("name"))`` for server-to-server
  connections (JWT bearer, client credentials), minted on first use, single flight.

The session dependency itself is built by :meth:`SFOAuth.session
<sfoauth_fastapi.SFOAuth>`: a closure over the app's ``user_key`` dependency, so the
app's own auth runs through FastAPI's dependency injection unchanged.
"""

from __future__ import annotations

import inspect
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cachetools import TTLCache
from fastapi import Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser

from sfoauth_core.exceptions import (
    SFOAuthError,
)
from sfoauth_core.http.clients import build_http_client
from sfoauth_core.manager import AsyncTokenManager
from sfoauth_core.tokens import Identity, Token

from .errors import http_error
from .state import CookieSigner

__all__ = [
    "CallbackParams",
    "ConnectionDependency",
    "CookieIdentity",
    "SalesforceCallback",
    "SalesforceSession",
    "is_async_callable",
]

_ONE_YEAR = 365 * 24 * 3600


def _cookie(request: Request, name: str) -> str | None:
    """One cookie of the request, as ``request.cookies[name]`` would give it.

    Reads the raw ASGI headers rather than ``request.cookies``: building Starlette's
    ``Headers`` and every cookie costs more than the rest of ``sf.session``'s hot path.
    The header is parsed by Starlette's own ``cookie_parser``; a later Cookie header
    wins, as in ``request.cookies``.
    """
    found = None
    for header, value in request.scope["headers"]:
        if header == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name, found)
    return found


def is_async_callable(obj: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one."""
    while hasattr(obj, "func") and not inspect.isroutine(obj):  # functools.partial
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - a callable object's method
    )


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Run a user hook: awaited if async, in the threadpool if sync."""
    if is_async_callable(hook):
        return await hook(*args)
    return await run_in_threadpool(hook, *args)


class CookieIdentity:
    """The default ``user_key``: an anonymous visitor id in a signed cookie.

    ``/login`` mints one for a browser without it; a completed login replaces it by a
    fresh one (the identity rotates when the user logs in, SECURITY.md item 6).

    Args:
        signer: signs the cookie (built from the app's ``secret_key``).
        secure: send the cookie over HTTPS only (and use the ``__Host-`` prefix).
        max_age: lifetime of the cookie in seconds.
    """

    def __init__(
        self, signer: CookieSigner, *, secure: bool = True, max_age: int = _ONE_YEAR
    ) -> None:
        self.signer = signer
        self.secure = secure
        self.max_age = max_age
        self.cookie_name = "__Host-sfoauth_uid" if secure else "sfoauth_uid"
        # Verified cookie values, so the hot path skips the HMAC (seconds-long TTL).
        self._verified: TTLCache[str, str] = TTLCache(maxsize=10_000, ttl=60)

    def __repr__(self) -> str:
        return f"CookieIdentity(cookie_name={self.cookie_name!r})"

    def key_from(self, request: Request) -> str | None:
        """The visitor id from the request's cookie, or ``None`` (no I/O)."""
        signed = _cookie(request, self.cookie_name)
        if not signed:
            return None
        try:
            return self._verified[signed]
        except KeyError:
            pass
        key = self.signer.unsign("uid", signed, max_age=self.max_age)
        if key is not None:
            self._verified[signed] = key
        return key

    async def __call__(self, request: Request) -> str | None:
        """The visitor id from the cookie, or ``None``."""
        return self.key_from(request)

    @staticmethod
    def new_key() -> str:
        """A fresh visitor id."""
        return "anon:" + secrets.token_urlsafe(24)

    def set_cookie(self, response: Response, key: str) -> None:
        """Attach ``key`` to ``response`` as the signed identity cookie."""
        response.set_cookie(
            self.cookie_name,
            self.signer.sign("uid", key),
            max_age=self.max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )


@dataclass(frozen=True, slots=True)
class CallbackParams:
    """The query of a callback, as sent (``repr`` hides ``code`` and ``state``)."""

    code: str | None = field(default=None, repr=False)
    state: str | None = field(default=None, repr=False)
    error: str | None = None
    error_description: str | None = None
    iss: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The parameters that are present."""
        return {
            name: value
            for name, value in (
                ("code", self.code),
                ("state", self.state),
                ("error", self.error),
                ("error_description", self.error_description),
                ("iss", self.iss),
            )
            if value is not None
        }


class SalesforceCallback:
    """Dependency injecting the authorization response (RFC 6749 §4.1.2, RFC 9207).

    Every parameter is an optional plain string: nothing here can fail validation, so
    a malformed callback never produces a 422 body that would echo its ``code``.
    """

    async def __call__(
        self,
        code: str | None = Query(None, description="The authorization code."),
        state: str | None = Query(None, description="The state sent at login."),
        error: str | None = Query(None, description="Salesforce's error code."),
        error_description: str | None = Query(None, description="Error text."),
        iss: str | None = Query(None, description="The issuer (RFC 9207)."),
    ) -> CallbackParams:
        return CallbackParams(code, state, error, error_description, iss)


#: Network failures of calls to Salesforce made through sfoauth's clients: the
#: exception handlers answer them 503 ``SFOAUTH_SALESFORCE_UNAVAILABLE`` (an
#: ``httpx`` error from any other client keeps its usual handling).
salesforce_failures: weakref.WeakSet[BaseException] = weakref.WeakSet()


def is_salesforce_failure(exc: BaseException) -> bool:
    """True for a network failure of a call sfoauth's clients made to Salesforce."""
    return exc in salesforce_failures


class _SharedTransport(httpx.AsyncBaseTransport):
    """Lets per-session clients share one connection pool without closing it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            salesforce_failures.add(exc)
            raise

    async def aclose(self) -> None:
        return None


class SalesforceSession:
    """A connected user's (or integration's) Salesforce session for one request.

    Attributes:
        key: the connection's key in the token store.
        token: the current token (masked in ``repr``).
    """

    __slots__ = ("_client", "_identities", "_manager", "_transport", "key", "token")

    def __init__(
        self,
        manager: AsyncTokenManager,
        key: str,
        token: Token,
        *,
        transport: httpx.AsyncBaseTransport,
        identities: TTLCache[str, Identity],
    ) -> None:
        self._manager = manager
        self._transport = transport
        self._identities = identities
        self._client: httpx.AsyncClient | None = None
        self.key = key
        self.token = token

    def __repr__(self) -> str:
        return (
            f"SalesforceSession(key={self.key!r}, instance_url={self.instance_url!r}, "
            f"org_id={self.org_id!r}, user_id={self.user_id!r})"
        )

    @property
    def instance_url(self) -> str:
        """The org's API base URL (``https://<domain>.my.salesforce.com``)."""
        return self.token.instance_url or ""

    @property
    def org_id(self) -> str | None:
        """The 18-character org id."""
        return self.token.org_id

    @property
    def user_id(self) -> str | None:
        """The 18-character Salesforce user id."""
        return self.token.user_id

    @property
    def client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on ``instance_url`` that adds the bearer token and,
        on a 401 ``INVALID_SESSION_ID``, refreshes once (single flight) and retries.

        Built on first use and sharing sfoauth's connection pool; closing it is
        optional and leaves the pool open.
        """
        if self._client is None:
            self._client = build_http_client(
                self._manager.oauth.app,
                asynchronous=True,
                transport=_SharedTransport(self._transport),
                base_url=self.instance_url,
                auth=self._manager.auth(self.key),
            )
        return self._client

    async def identity(self) -> Identity:
        """The identity URL's description of the user and org (cached for minutes).

        Raises:
            HTTPException: mapped from the core error when Salesforce fails.
        """
        cached = self._identities.get(self.key)
        if cached is not None:
            return cached
        try:
            # A refused token is renewed and the call retried, as for ``client``.
            found = await self._manager.identity(self.key)
        except SFOAuthError as exc:
            raise http_error(exc) from None
        self._identities[self.key] = found
        return found


class ConnectionDependency:
    """``Depends(sf.connection("name"))``: a server-to-server session.

    The token is minted (JWT bearer or client credentials) on first use, under the
    store's lock so that concurrent first requests mint once, and re-minted when
    Salesforce says it expired.

    Args:
        name: the connection's name (for messages).
        manager: the connection's token manager.
        key: its key in the store.
        grant: ``jwt_bearer`` or ``client_credentials``.
        username: the JWT ``sub`` (default: the connection app's ``username``).
        transport: the shared HTTP transport for ``session.client``.
        identities: identity cache.
    """

    def __init__(
        self,
        name: str,
        manager: AsyncTokenManager,
        key: str,
        *,
        grant: str,
        username: str | None,
        transport: httpx.AsyncBaseTransport,
        identities: TTLCache[str, Identity],
    ) -> None:
        self.name = name
        self.manager = manager
        self.key = key
        self.grant = grant
        self.username = username
        self._transport = transport
        self._identities = identities

    def __repr__(self) -> str:
        return f"ConnectionDependency(name={self.name!r}, grant={self.grant!r})"

    async def token(self) -> Token:
        """A valid token for the connection, minted on first use (once, under the
        store's lock, however many requests arrive together) and re-minted when it
        expires.

        Raises:
            SFOAuthError: Salesforce or the store failed.
        """
        return await self.manager.obtain(
            self.key, grant=self.grant, username=self.username
        )

    async def __call__(self) -> SalesforceSession:
        try:
            token = await self.token()
        except SFOAuthError as exc:
            raise http_error(exc) from None
        return SalesforceSession(
            self.manager,
            self.key,
            token,
            transport=self._transport,
            identities=self._identities,
        )
