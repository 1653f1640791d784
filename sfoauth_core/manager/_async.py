"""The asynchronous token manager: the lifecycle plans over an
:class:`AsyncTokenStore`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import anyio
import httpx

from .._plans import adrive
from ..auth import Renewal, SalesforceAuth, _Fetch, fetch_async
from ..exceptions import ReauthorizationRequired, TokenNotFoundError
from ..flows._base import Flow
from ..http._loops import current_loop
from ..keepalive import (
    DEFAULT_KEEPALIVE_CONCURRENCY,
    KeepAliveProgress,
    KeepAliveSummary,
    keep_alive_async,
)
from ..storage.base import AsyncTokenStore, TokenRecord, aholding
from ..tokens import Identity, Token
from ._base import (
    _CLAIMS,
    BaseTokenManager,
    OAuthClient,
    Plan,
    _access_token_of,
    _Call,
    _Claimed,
    _Delete,
    _Mark,
    _Op,
    _Read,
    _Save,
    _SetMarker,
)

__all__ = ["AsyncOAuth", "AsyncTokenManager"]

T = TypeVar("T")


class AsyncOAuth(OAuthClient, Protocol):
    """``AsyncSalesforceOAuth`` as the manager sees it."""

    async def run(self, flow: Flow[T]) -> T: ...


class AsyncTokenManager(BaseTokenManager[anyio.Lock, AsyncOAuth, AsyncTokenStore]):
    """The asynchronous twin of :class:`~sfoauth_core.manager.TokenManager` (asyncio or
    trio); same arguments, awaitable methods.

    Args:
        oauth: an :class:`~sfoauth_core.http.async_client.AsyncSalesforceOAuth`.
        store: any :class:`~sfoauth_core.storage.AsyncTokenStore`.
        events: hooks fired after saves (a new :class:`TokenEvents` when omitted).
        retry: retries for 5xx/429/timeouts on refresh (default 3 attempts with
            back-off).
        leeway: refresh this many seconds before a known expiry.
        session_timeout: the org's or app's session timeout in seconds, when you know
            it; tokens then expire at ``issued_at + session_timeout``.
        introspect_expiry: learn ``exp`` by introspecting each new access token (one
            more call per token; only for the app's own tokens).
        cache_ttl: seconds a token is served from memory before the store is read again.
        cache_size: connections kept in the in-process cache.
        lock_wait: seconds to wait for this process's per-key lock.

    Raises:
        ConfigurationError: the store's lock lease is shorter than a whole refresh.

    Example:
        >>> manager = AsyncTokenManager(AsyncSalesforceOAuth(app), store)
        >>> async with await manager.client(user_key) as sf:
        ...     await sf.get("/services/data/v62.0/limits")
    """

    @asynccontextmanager
    async def _in_process(self, key: str, what: str) -> AsyncIterator[None]:
        # This process's per-key lock, taken before the store's: one caller per key
        # at a time goes to the store (and its database or Redis connection).
        lock = self._local_lock(key, anyio.Lock, scope=current_loop())
        async with aholding(lock, wait=self.lock_wait, what=f"{what} of {key!r}"):
            yield

    # Running plans --------------------------------------------------------------------
    async def _perform(self, op: _Op) -> Any:
        if isinstance(op, _Read):
            return await self.store.get(op.key)
        if isinstance(op, _Save):
            return await self.store.save(
                op.key,
                op.token,
                grant=op.grant,
                username=op.username,
                expected_version=op.expected_version,
            )
        if isinstance(op, _Mark):
            return await self.store.mark_needs_reauth(
                op.key, op.reason, expected_version=op.expected_version
            )
        if isinstance(op, _Delete):
            return await self.store.delete(op.key)
        if isinstance(op, _SetMarker):
            return await self.store.set_refresh_marker(
                op.key, op.digest, expected_version=op.expected_version
            )
        if isinstance(op, _Call):
            return await self.oauth.run(op.flow)
        if isinstance(op, _Fetch):
            return await fetch_async(self, op)
        return await self.events.aemit(op.event)

    async def _drive(self, plan: Plan[T]) -> T:
        # A failed operation is thrown back into the plan, which decides.
        return await adrive(plan, self._perform, throws=Exception)

    # Public API -----------------------------------------------------------------------
    async def get(self, key: str) -> Token | None:
        """The stored token (whatever its state), or ``None``."""
        record = await self.store.get(key)
        return record.token if record is not None else None

    async def record(self, key: str) -> TokenRecord | None:
        """The stored record: token, version, grant, status and re-auth reason."""
        return await self.store.get(key)

    async def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str = "authorization_code",
        username: str | None = None,
        revoke_superseded: bool = True,
    ) -> TokenRecord:
        """Store a newly obtained token (a login), clearing any re-auth flag.

        Args:
            grant: how it was obtained; ``jwt_bearer`` / ``client_credentials`` tokens
                are re-minted instead of refreshed.
            username: for ``jwt_bearer``: the user to mint for (default: the app's).
            revoke_superseded: revoke the previous grant's refresh token at Salesforce.
        """
        return await self._drive(
            self._save_plan(key, token, grant, username, revoke_superseded)
        )

    async def mint(self, key: str, *, grant: str, username: str | None = None) -> Token:
        """Obtain and store a server-to-server token (``jwt_bearer`` or
        ``client_credentials``); it will be re-minted when it expires."""
        return await self._drive(self._mint_plan(key, grant, username))

    async def exchange(
        self,
        key: str,
        subject_token: str,
        subject_token_type: str,
        *,
        token_handler: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
    ) -> Token:
        """Connect ``key`` by exchanging another identity provider's token (reference
        15.8): sent once, never retried; stored like a login (the superseded grant is
        revoked) and refreshed like one when Salesforce granted a refresh token, else
        flagged for a new exchange when the access token expires.

        Raises:
            InvalidGrantError: the token exchange handler refused the outside token.
            SalesforceUnavailableError: no answer or 5xx (not retried).
            StorageError: the store failed.
        """
        return await self._drive(
            self._exchange_plan(
                key, subject_token, subject_token_type, token_handler, scopes
            )
        )

    async def obtain(
        self, key: str, *, grant: str, username: str | None = None
    ) -> Token:
        """Async twin of :meth:`TokenManager.obtain
        <sfoauth_core.manager.TokenManager.obtain>`: a valid server-to-server token,
        minted once under the store's lock when nothing usable is stored."""
        try:
            return await self.valid_token(key)
        except (TokenNotFoundError, ReauthorizationRequired):
            pass
        async with self._in_process(key, "token"), self.store.lock(key):
            return await self._drive(self._obtain_plan(key, grant, username))

    async def valid_token(self, key: str) -> Token:
        """A token believed valid: from memory (no I/O) unless expiry is known to be
        near.

        Raises:
            TokenNotFoundError: nothing is stored for ``key``.
            ReauthorizationRequired: the connection needs a new login.
            SalesforceUnavailableError: a needed refresh failed after retries.
            StorageError: the store failed.
        """
        cached = self._cached_token(key)
        if cached is not None:
            return cached
        token, due = await self._drive(self._load_plan(key))
        return await self.refresh(key, stale=token) if due else token

    async def refresh(self, key: str, *, stale: Token | str | None = None) -> Token:
        """Renew ``key``'s token, single-flight across threads and the store's sharers.

        Args:
            stale: the access token that failed (or is expiring). If the store already
                holds a different one, that one is returned without calling Salesforce.
                ``None`` forces a renewal.

        Raises:
            ReauthorizationRequired: Salesforce refused the grant (connection flagged).
            SalesforceUnavailableError: 5xx/429/timeouts after retries (nothing
                changed).
            InvalidClientError: the app's credentials are wrong (nothing flagged).
            StorageError: the store or its lock failed (no call was made).
        """
        return (await self.renew(key, stale=stale)).token

    async def renew(self, key: str, *, stale: Token | str | None = None) -> Renewal:
        """:meth:`refresh`, also saying whether Salesforce was called
        (``Renewal.at_salesforce``) or a token a sibling had renewed was re-read."""
        stale_access = _access_token_of(stale)
        async with self._in_process(key, "refresh"):
            sibling = self._fresh_sibling(key, stale_access)
            if sibling is not None:
                return Renewal(sibling, at_salesforce=False)
            for _ in range(_CLAIMS):
                # Waiting for the store's lock can be cancelled (nothing has happened
                # yet); from the moment it is held, the claim, the lock's release and a
                # claimed refresh are shielded: a caller cancelled after Salesforce
                # rotated the refresh token must not lose the new one before it is
                # saved (SECURITY.md items 23, 26). The lock guards the claim only;
                # Salesforce is called after it is released, under the durable marker.
                held = self.store.lock(key)
                await held.__aenter__()
                with anyio.CancelScope(shield=True):
                    try:
                        step = await self._drive(self._refresh_plan(key, stale_access))
                    except BaseException as exc:
                        await held.__aexit__(type(exc), exc, exc.__traceback__)
                        raise
                    await held.__aexit__(None, None, None)
                    if isinstance(step, _Claimed):
                        return await self._drive(self._claimed_plan(key, step))
                if isinstance(step, Renewal):
                    return step
                # Watching another refresher's marker can be cancelled: nothing is sent.
                renewal = await self._drive(self._watch_plan(key, step.record))
                if renewal is not None:
                    return renewal
            raise self._claims_exhausted(key)

    async def identity(self, key: str, *, version: str | None = None) -> Identity:
        """The identity URL's answer for ``key``'s user, renewing the token when it is
        refused (401, or 403 ``Bad_OAuth_Token``) exactly as API requests do.

        Raises:
            TokenNotFoundError, ReauthorizationRequired: as :meth:`valid_token`.
            InvalidTokenError: the token was refused even after the renewal.
            SalesforceUnavailableError: no answer or 5xx/429 after retries.
        """
        return await self._drive(self._identity_plan(key, version))

    async def userinfo(self, key: str) -> dict[str, Any]:
        """OpenID Connect UserInfo claims for ``key``'s user; renews a refused token
        like :meth:`identity`."""
        return await self._drive(self._userinfo_plan(key))

    async def revoke(self, key: str) -> bool:
        """Disconnect: revoke at Salesforce (best effort), then delete the local token.

        Returns:
            ``True`` if Salesforce confirmed the revocation. Local tokens are removed
            either way.
        """
        async with self.store.lock(key):
            return await self._drive(self._revoke_plan(key))

    async def keep_alive(
        self,
        *,
        idle_for: float,
        limit: int | None = None,
        concurrency: int = DEFAULT_KEEPALIVE_CONCURRENCY,
        progress: KeepAliveProgress | None = None,
    ) -> KeepAliveSummary:
        """Async twin of :meth:`TokenManager.keep_alive` (same arguments, outcomes and
        errors); refreshes run as tasks, at most ``concurrency`` at once."""
        return await keep_alive_async(
            self,
            idle_for=idle_for,
            limit=limit,
            concurrency=concurrency,
            progress=progress,
        )

    def auth(self, key: str) -> SalesforceAuth:
        """An ``httpx.Auth`` adding ``key``'s bearer token, refreshing once on a 401."""
        return SalesforceAuth(self, key)

    async def client(self, key: str, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` bound to the connection's ``instance_url``.

        Keyword arguments go to ``httpx.AsyncClient`` (``transport``, ``timeout``...).

        Raises:
            TokenNotFoundError: nothing stored, or the token has no ``instance_url``.
        """
        token = await self.valid_token(key)
        if not token.instance_url:
            raise TokenNotFoundError(f"the token of {key!r} has no instance_url")
        kwargs.setdefault("timeout", self.oauth.app.timeout)
        return httpx.AsyncClient(
            base_url=token.instance_url, auth=self.auth(key), **kwargs
        )
