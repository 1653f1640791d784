"""The synchronous token manager: runs the lifecycle plans over a
:class:`TokenStore`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import httpx

from .._plans import drive
from ..auth import Renewal, SalesforceAuth, _Fetch, fetch_sync
from ..exceptions import ReauthorizationRequired, TokenNotFoundError
from ..flows._base import Flow
from ..keepalive import (
    DEFAULT_KEEPALIVE_CONCURRENCY,
    KeepAliveProgress,
    KeepAliveSummary,
    keep_alive_sync,
)
from ..storage.base import TokenRecord, TokenStore, holding
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

__all__ = ["SyncOAuth", "TokenManager"]

T = TypeVar("T")


class SyncOAuth(OAuthClient, Protocol):
    """``SalesforceOAuth`` as the manager sees it."""

    def run(self, flow: Flow[T]) -> T: ...


class TokenManager(BaseTokenManager[threading.Lock, SyncOAuth, TokenStore]):
    """Keeps one store's tokens valid: cached reads, single-flight rotation-safe
    refresh.

    Args:
        oauth: a :class:`~sfoauth_core.http.client.SalesforceOAuth`.
        store: any :class:`~sfoauth_core.storage.TokenStore` (memory, Redis, Django...).
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
        >>> manager = TokenManager(SalesforceOAuth(app), RedisTokenStore(redis, cipher))
        >>> manager.save(user_key, oauth.exchange_code(code, code_verifier=verifier))
        >>> with manager.client(user_key) as sf:
        ...     sf.get("/services/data/v62.0/limits")
    """

    @contextmanager
    def _in_process(self, key: str, what: str) -> Iterator[None]:
        # This process's per-key lock, taken before the store's: one thread per key at
        # a time goes to the store (and its database or Redis connection).
        lock = self._local_lock(key, threading.Lock)
        with holding(lock, wait=self.lock_wait, what=f"{what} of {key!r}"):
            yield

    # Running plans --------------------------------------------------------------------
    def _perform(self, op: _Op) -> Any:
        if isinstance(op, _Read):
            return self.store.get(op.key)
        if isinstance(op, _Save):
            return self.store.save(
                op.key,
                op.token,
                grant=op.grant,
                username=op.username,
                expected_version=op.expected_version,
            )
        if isinstance(op, _Mark):
            return self.store.mark_needs_reauth(
                op.key, op.reason, expected_version=op.expected_version
            )
        if isinstance(op, _Delete):
            return self.store.delete(op.key)
        if isinstance(op, _SetMarker):
            return self.store.set_refresh_marker(
                op.key, op.digest, expected_version=op.expected_version
            )
        if isinstance(op, _Call):
            return self.oauth.run(op.flow)
        if isinstance(op, _Fetch):
            return fetch_sync(self, op)
        return self.events.emit(op.event)

    def _drive(self, plan: Plan[T]) -> T:
        # A failed operation is thrown back into the plan, which decides.
        return drive(plan, self._perform, throws=Exception)

    # Public API -----------------------------------------------------------------------
    def get(self, key: str) -> Token | None:
        """The stored token (whatever its state), or ``None``."""
        record = self.store.get(key)
        return record.token if record is not None else None

    def record(self, key: str) -> TokenRecord | None:
        """The stored record: token, version, grant, status and re-auth reason."""
        return self.store.get(key)

    def save(
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
        return self._drive(
            self._save_plan(key, token, grant, username, revoke_superseded)
        )

    def mint(self, key: str, *, grant: str, username: str | None = None) -> Token:
        """Obtain and store a server-to-server token (``jwt_bearer`` or
        ``client_credentials``); it will be re-minted when it expires."""
        return self._drive(self._mint_plan(key, grant, username))

    def exchange(
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
        return self._drive(
            self._exchange_plan(
                key, subject_token, subject_token_type, token_handler, scopes
            )
        )

    def obtain(self, key: str, *, grant: str, username: str | None = None) -> Token:
        """A valid token of a server-to-server connection, minted on first use.

        Like :meth:`valid_token`, but when nothing usable is stored (never minted, or
        flagged) it mints under the store's lock, after re-reading: concurrent first
        callers, in this process or sharing the store, mint once.

        Raises:
            OAuthProtocolError: Salesforce refused the grant (e.g. the user is not
                pre-authorized for JWT bearer).
            SalesforceUnavailableError: 5xx/429/timeouts after retries.
            StorageError: the store or its lock failed.
        """
        try:
            return self.valid_token(key)
        except (TokenNotFoundError, ReauthorizationRequired):
            pass
        with self._in_process(key, "token"), self.store.lock(key):
            return self._drive(self._obtain_plan(key, grant, username))

    def valid_token(self, key: str) -> Token:
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
        token, due = self._drive(self._load_plan(key))
        return self.refresh(key, stale=token) if due else token

    def refresh(self, key: str, *, stale: Token | str | None = None) -> Token:
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
        return self.renew(key, stale=stale).token

    def renew(self, key: str, *, stale: Token | str | None = None) -> Renewal:
        """:meth:`refresh`, also saying whether Salesforce was called
        (``Renewal.at_salesforce``) or a token a sibling had renewed was re-read."""
        stale_access = _access_token_of(stale)
        with self._in_process(key, "refresh"):
            sibling = self._fresh_sibling(key, stale_access)
            if sibling is not None:
                return Renewal(sibling, at_salesforce=False)
            for _ in range(_CLAIMS):
                # The store's lock guards the claim only; Salesforce is called after
                # it is released, under the durable marker (_base module docstring).
                with self.store.lock(key):
                    step = self._drive(self._refresh_plan(key, stale_access))
                if isinstance(step, Renewal):
                    return step
                if isinstance(step, _Claimed):
                    return self._drive(self._claimed_plan(key, step))
                renewal = self._drive(self._watch_plan(key, step.record))
                if renewal is not None:
                    return renewal
            raise self._claims_exhausted(key)

    def identity(self, key: str, *, version: str | None = None) -> Identity:
        """The identity URL's answer for ``key``'s user, renewing the token when it is
        refused (401, or 403 ``Bad_OAuth_Token``) exactly as API requests do.

        Args:
            version: fills ``{version}`` in ``urls`` (``"62.0"`` or ``"latest"``).

        Raises:
            TokenNotFoundError, ReauthorizationRequired: as :meth:`valid_token`.
            InvalidTokenError: the token was refused even after the renewal.
            SalesforceUnavailableError: no answer or 5xx/429 after retries.
        """
        return self._drive(self._identity_plan(key, version))

    def userinfo(self, key: str) -> dict[str, Any]:
        """OpenID Connect UserInfo claims for ``key``'s user; renews a refused token
        like :meth:`identity`."""
        return self._drive(self._userinfo_plan(key))

    def revoke(self, key: str) -> bool:
        """Disconnect: revoke at Salesforce (best effort), then delete the local token.

        Returns:
            ``True`` if Salesforce confirmed the revocation. Local tokens are removed
            either way.
        """
        with self.store.lock(key):
            return self._drive(self._revoke_plan(key))

    def keep_alive(
        self,
        *,
        idle_for: float,
        limit: int | None = None,
        concurrency: int = DEFAULT_KEEPALIVE_CONCURRENCY,
        progress: KeepAliveProgress | None = None,
    ) -> KeepAliveSummary:
        """Refresh every connection whose refresh token has been idle ``idle_for``
        seconds or more, so the app's idle limit (reference 15.3) never expires it.

        Safe on several hosts at once (cron, a task queue): each refresh is the normal
        single-flight renewal, and a connection another host renewed moments ago is
        skipped without a call. Minted grants (JWT bearer, client credentials) and
        flagged connections are skipped. Never raises for one connection.

        Args:
            idle_for: seconds since the refresh token was last used (pick it well
                below the app's idle limit, e.g. a third of it).
            limit: at most this many connections this run, the longest idle first.
            concurrency: refreshes in flight at once.
            progress: ``progress(result, done, total)`` after each connection.

        Returns:
            Each connection's outcome (kept alive / needs reauth / failed / skipped).

        Raises:
            ConfigurationError: a bad argument, or a store that cannot list idle
                connections.
            StorageError: the store could not list them.
        """
        return keep_alive_sync(
            self,
            idle_for=idle_for,
            limit=limit,
            concurrency=concurrency,
            progress=progress,
        )

    def auth(self, key: str) -> SalesforceAuth:
        """An ``httpx.Auth`` adding ``key``'s bearer token, refreshing once on a 401."""
        return SalesforceAuth(self, key)

    def client(self, key: str, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` bound to the connection's ``instance_url``.

        Keyword arguments go to ``httpx.Client`` (``transport``, ``timeout``...).

        Raises:
            TokenNotFoundError: nothing stored, or the token has no ``instance_url``.
        """
        token = self.valid_token(key)
        if not token.instance_url:
            raise TokenNotFoundError(f"the token of {key!r} has no instance_url")
        kwargs.setdefault("timeout", self.oauth.app.timeout)
        return httpx.Client(base_url=token.instance_url, auth=self.auth(key), **kwargs)
