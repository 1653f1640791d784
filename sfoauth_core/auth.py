"""``SalesforceAuth``: an ``httpx.Auth`` that adds a connection's bearer token and
renews it once when Salesforce says the session is gone.

Salesforce reports an expired (or revoked) access token only through the API: HTTP 401
with a JSON array body ``[{"message": "Session expired or invalid", "errorCode":
"INVALID_SESSION_ID"}]`` (reference 2.5). On that answer the auth asks the token manager
for a refresh with ``stale`` = the token just used (so concurrent requests cause one
refresh, SECURITY.md item 21) and sends the request once more. It does not refresh on
the 401 bodies a refresh cannot fix (``This session is not valid for use with the REST
API``, ``Connected app is not attached to Agent``), which would otherwise loop.

The token is only attached to requests for the connection's instance host or another
host the app trusts; redirects to other origins lose the header (httpx strips
``Authorization`` across origins, and this auth never re-adds it).

One sans-IO plan (:meth:`SalesforceAuth._plan`) holds the logic; ``sync_auth_flow`` and
``async_auth_flow`` only perform its steps (httpx's own ``Auth`` pattern).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .exceptions import MalformedResponseError, UntrustedHostError
from .flows._base import loads_json
from .tokens import Token

__all__ = ["SalesforceAuth", "is_invalid_session"]

#: 401 messages that a refresh cannot fix (jsforce excludes the same two).
NOT_REFRESHABLE = (
    "this session is not valid for use with the rest api",
    "connected app is not attached to agent",
)


class _SyncTokens(Protocol):
    def valid_token(self, key: str) -> Token: ...

    def refresh(self, key: str, *, stale: Token | str | None = None) -> Token: ...

    def may_receive_token(self, host: str, token: Token) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Fetch:
    stale: str | None  # None: the current valid token; else: renew past this one


@dataclass(frozen=True, slots=True)
class _ReadBody:
    response: httpx.Response


def is_invalid_session(status_code: int, body: bytes) -> bool:
    """True for a 401 ``INVALID_SESSION_ID`` that a token refresh can fix.

    Args:
        status_code: the HTTP status.
        body: the response body (Salesforce sends a JSON array of error objects).
    """
    if status_code != 401:
        return False
    try:
        payload = loads_json(body)  # bounded size and depth: API bodies are untrusted
    except MalformedResponseError:
        return False
    errors = payload if isinstance(payload, list) else [payload]
    for error in errors:
        if (
            not isinstance(error, dict)
            or error.get("errorCode") != "INVALID_SESSION_ID"
        ):
            continue
        message = str(error.get("message", "")).lower()
        if not any(phrase in message for phrase in NOT_REFRESHABLE):
            return True
    return False


class SalesforceAuth(httpx.Auth):
    """Bearer auth for one connection, with one refresh-and-retry on an expired session.

    Args:
        manager: a :class:`~sfoauth_core.manager.TokenManager` (for ``httpx.Client``) or
            :class:`~sfoauth_core.manager.AsyncTokenManager` (for
            ``httpx.AsyncClient``).
        key: the connection's key in the manager's store.

    Raises:
        UntrustedHostError: (from the request) the URL's host is neither the
            connection's instance nor a host the app trusts.
        ReauthorizationRequired: (from the request) the refresh was refused.

    Example:
        >>> with httpx.Client(base_url=token.instance_url, auth=manager.auth(key)) as c:
        ...     c.get("/services/data/v62.0/sobjects")
    """

    def __init__(self, manager: Any, key: str) -> None:
        self.manager = manager
        self.key = key
        self._is_async = inspect.iscoroutinefunction(manager.valid_token)

    def __repr__(self) -> str:
        return f"SalesforceAuth(key={self.key!r})"

    def _authorize(self, request: httpx.Request, token: Token) -> None:
        host = request.url.host
        if not self.manager.may_receive_token(host, token):
            raise UntrustedHostError(
                f"refusing to send the Salesforce token of {self.key!r} to host "
                f"{host!r}"
            )
        request.headers["Authorization"] = (
            f"{token.token_type or 'Bearer'} {token.access_token}"
        )

    def _plan(
        self, request: httpx.Request
    ) -> Generator[_Fetch | _ReadBody | httpx.Request, Any, None]:
        token: Token = yield _Fetch(None)
        self._authorize(request, token)
        response: httpx.Response = yield request
        if response.status_code != 401:
            return
        yield _ReadBody(response)
        if not is_invalid_session(response.status_code, response.content):
            return
        fresh: Token = yield _Fetch(token.access_token)
        self._authorize(request, fresh)
        yield request  # one retry; its answer goes to the caller whatever it is

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._is_async:
            raise RuntimeError("an AsyncTokenManager's auth needs an httpx.AsyncClient")
        manager: _SyncTokens = self.manager
        plan = self._plan(request)
        value: Any = None
        while True:
            try:
                step = plan.send(value)
            except StopIteration:
                return
            if isinstance(step, httpx.Request):
                value = yield step
            elif isinstance(step, _ReadBody):
                value = step.response.read()
            elif step.stale is None:
                value = manager.valid_token(self.key)
            else:
                value = manager.refresh(self.key, stale=step.stale)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._is_async:
            raise RuntimeError("a TokenManager's auth needs an httpx.Client")
        manager = self.manager
        plan = self._plan(request)
        value: Any = None
        while True:
            try:
                step = plan.send(value)
            except StopIteration:
                return
            if isinstance(step, httpx.Request):
                value = yield step
            elif isinstance(step, _ReadBody):
                value = await step.response.aread()
            elif step.stale is None:
                value = await manager.valid_token(self.key)
            else:
                value = await manager.refresh(self.key, stale=step.stale)
