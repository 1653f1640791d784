"""``SalesforceAuth``: an ``httpx.Auth`` that adds a connection's bearer token and
renews it once when Salesforce says the session is gone.

Salesforce reports an expired (or revoked) access token only through the API: HTTP 401
with a JSON array body ``[{"message": "Session expired or invalid", "errorCode":
"INVALID_SESSION_ID"}]`` (reference 2.5). On that answer the auth asks the token manager
for a refresh with ``stale`` = the token just used (so concurrent requests cause one
refresh, SECURITY.md item 21) and sends the request once more; if the manager only
re-read a token someone else had renewed and that one is refused too, it renews once
more and sends a last time (:func:`_renewing`, docs/token-lifecycle.md). It does not
refresh on the 401 bodies a refresh cannot fix (``This session is not valid for use
with the REST API``, ``Connected app is not attached to Agent``), which would loop.

The token is only attached to requests for the connection's instance host or another
host the app trusts; redirects to other origins lose the header (httpx strips
``Authorization`` across origins, and this auth never re-adds it).

One sans-IO plan (:meth:`SalesforceAuth._plan`) holds the logic; ``sync_auth_flow`` and
``async_auth_flow`` run it through the plan kernel (:mod:`sfoauth_core._plans`), which
hands its requests to httpx and performs the other steps (httpx's own ``Auth`` pattern).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import httpx

from ._plans import arelay, relay
from .exceptions import MalformedResponseError, UntrustedHostError
from .flows._base import loads_json
from .tokens import Token

__all__ = [
    "AsyncRenewingTokenSource",
    "AsyncTokenSource",
    "Renewal",
    "RenewingTokenSource",
    "SalesforceAuth",
    "TokenSource",
    "is_invalid_session",
]

#: 401 messages that a refresh cannot fix (jsforce excludes the same two).
NOT_REFRESHABLE = (
    "this session is not valid for use with the rest api",
    "connected app is not attached to agent",
)


@dataclass(frozen=True, slots=True)
class Renewal:
    """A token handed out after one was refused, and where it came from.

    Attributes:
        token: the token to retry with.
        at_salesforce: ``True`` when this renewal called Salesforce (even if a
            sibling's concurrent write then won the store and its token is handed
            out); ``False`` when the cache or the store already held a token other
            than the refused one (another thread, manager or process had renewed it)
            and no call was made.
    """

    token: Token
    at_salesforce: bool


@dataclass(frozen=True, slots=True)
class _Fetch:
    key: str
    stale: str | None  # None: the current valid token; else: renew past this one


@dataclass(frozen=True, slots=True)
class _ReadBody:
    response: httpx.Response


#: Renewals allowed after one refusal (see :func:`_renewing`).
MAX_RENEWALS = 2

Attempt = Callable[[Token], Generator[Any, Any, tuple[bool, Any]]]


def _renewing(key: str, attempt: Attempt) -> Generator[Any, Any, tuple[bool, Any]]:
    """The rule for a refused token, shared by API requests, identity and userinfo.

    ``attempt(token)`` performs the call and returns ``(refused, value)``. When the
    token is refused (401 ``INVALID_SESSION_ID``, or ``Bad_OAuth_Token`` on the identity
    URL and userinfo), the manager renews past it (``stale`` = the refused token) and
    the call is retried once with the token it hands out. When that token did not come
    from Salesforce (it was a re-read: another manager, worker or thread had renewed it
    already) and it is refused too, the manager renews once more, now past that token,
    which calls Salesforce unless yet another sibling got there first, and the call is
    retried a last time. So a refusal costs at most one call to the token endpoint per
    request, and the app only sees the refusal of a token that was just renewed (or of
    a second re-read). Returns the last ``(refused, value)``.
    """
    token: Token = yield _Fetch(key, None)
    refused, value = yield from attempt(token)
    for _ in range(MAX_RENEWALS):
        if not refused:
            break
        renewal: Renewal = yield _Fetch(key, token.access_token)
        token = renewal.token
        refused, value = yield from attempt(token)
        if renewal.at_salesforce:
            break
    return refused, value


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


class _Source(Protocol):
    def may_receive_token(self, host: str, token: Token) -> bool: ...


class TokenSource(_Source, Protocol):
    """A synchronous manager as :class:`SalesforceAuth` needs it: the documented
    ``valid_token`` and ``refresh`` (a :class:`~sfoauth_core.manager.TokenManager`,
    or a manager-like object of yours)."""

    def valid_token(self, key: str) -> Token: ...

    def refresh(self, key: str, *, stale: str | None = None) -> Token: ...


@runtime_checkable
class RenewingTokenSource(_Source, Protocol):
    """A synchronous manager that also says where a renewed token came from
    (``renew``, as :class:`~sfoauth_core.manager.TokenManager` does)."""

    def valid_token(self, key: str) -> Token: ...

    def renew(self, key: str, *, stale: str | None = None) -> Renewal: ...


class AsyncTokenSource(_Source, Protocol):
    """Async twin of :class:`TokenSource`."""

    async def valid_token(self, key: str) -> Token: ...

    async def refresh(self, key: str, *, stale: str | None = None) -> Token: ...


@runtime_checkable
class AsyncRenewingTokenSource(_Source, Protocol):
    """Async twin of :class:`RenewingTokenSource` (an
    :class:`~sfoauth_core.manager.AsyncTokenManager`)."""

    async def valid_token(self, key: str) -> Token: ...

    async def renew(self, key: str, *, stale: str | None = None) -> Renewal: ...


SyncSource = TokenSource | RenewingTokenSource
AsyncSource = AsyncTokenSource | AsyncRenewingTokenSource


def fetch_sync(manager: SyncSource, step: _Fetch) -> Token | Renewal:
    """Perform a :class:`_Fetch` with a sync manager (``renew`` when it has one)."""
    if step.stale is None:
        return manager.valid_token(step.key)
    if isinstance(manager, RenewingTokenSource):
        return manager.renew(step.key, stale=step.stale)
    # A manager-like object with the documented refresh() only.
    return Renewal(manager.refresh(step.key, stale=step.stale), True)


async def fetch_async(manager: AsyncSource, step: _Fetch) -> Token | Renewal:
    """Async twin of :func:`fetch_sync`."""
    if step.stale is None:
        return await manager.valid_token(step.key)
    if isinstance(manager, AsyncRenewingTokenSource):
        return await manager.renew(step.key, stale=step.stale)
    return Renewal(await manager.refresh(step.key, stale=step.stale), True)


class SalesforceAuth(httpx.Auth):
    """Bearer auth for one connection; an expired session is renewed and the request
    sent again (one call to Salesforce at most; see :func:`_renewing`).

    Args:
        manager: a :class:`~sfoauth_core.manager.TokenManager` (for ``httpx.Client``) or
            :class:`~sfoauth_core.manager.AsyncTokenManager` (for
            ``httpx.AsyncClient``).
        key: the connection's key in the manager's store.

    Raises:
        UntrustedHostError: (from the request) the URL's host is neither the
            connection's instance nor a host the app trusts.
        ReauthorizationRequired: (from the request) the refresh was refused.
        SalesforceUnavailableError: (from the request) the renewal got no answer or
            5xx after retries.

    Example:
        >>> with httpx.Client(base_url=token.instance_url, auth=manager.auth(key)) as c:
        ...     c.get("/services/data/v62.0/sobjects")
    """

    def __init__(self, manager: SyncSource | AsyncSource, key: str) -> None:
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
        def attempt(token: Token) -> Generator[Any, Any, tuple[bool, None]]:
            self._authorize(request, token)
            response: httpx.Response = yield request
            if response.status_code != 401:
                return False, None
            yield _ReadBody(response)
            return is_invalid_session(response.status_code, response.content), None

        # The last answer goes to the caller whatever it is.
        yield from _renewing(self.key, attempt)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._is_async:
            raise RuntimeError("an AsyncTokenManager's auth needs an httpx.AsyncClient")
        yield from relay(self._plan(request), self._step)

    def _step(
        self, step: _Fetch | _ReadBody | httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, Any]:
        # A request goes out to httpx; the rest is done here.
        if isinstance(step, httpx.Request):
            return (yield step)
        if isinstance(step, _ReadBody):
            return step.response.read()
        return fetch_sync(cast("SyncSource", self.manager), step)

    def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._is_async:
            raise RuntimeError("a TokenManager's auth needs an httpx.Client")
        return arelay(self._plan(request), self._astep, outward=httpx.Request)

    async def _astep(self, step: _Fetch | _ReadBody | httpx.Request) -> Any:
        if isinstance(step, _ReadBody):
            return await step.response.aread()
        if not isinstance(
            step, _Fetch
        ):  # pragma: no cover - requests go out via arelay
            raise TypeError(f"unexpected plan step {type(step).__name__}")
        return await fetch_async(cast("AsyncSource", self.manager), step)
