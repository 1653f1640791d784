"""Everything the sync and async clients share: configuration, flow construction, caches.

The twins :class:`~sfoauth_core.http.client.SalesforceOAuth` and
:class:`~sfoauth_core.http.async_client.AsyncSalesforceOAuth` only hand these flows to their
driver, so each public method body is one line (STYLE.md C3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config import ConnectedApp
from ..flows import (
    asset_token,
    client_credentials,
    device,
    discovery,
    id_token,
    identity,
    introspect,
    jwks,
    jwt_bearer,
    password,
    refresh,
    revoke,
    token_exchange,
    user_agent,
    userinfo,
    web_server,
)
from ..flows._base import Flow, verify_token_signature
from ..flows.state import check_state
from ..tokens import (
    AssetToken,
    AuthorizationRequest,
    DeviceAuthorization,
    Identity,
    Introspection,
    Token,
)

__all__ = ["BaseSalesforceOAuth"]

#: JWKS documents are cached this long (SECURITY.md item 14); an unknown ``kid`` re-fetches
#: at most once per ``JWKS_MIN_REFETCH_SECONDS`` per key set URL.
JWKS_TTL_SECONDS = jwks.JWKS_TTL_SECONDS


class BaseSalesforceOAuth:
    """Configuration plus flow factories; no I/O."""

    def __init__(self, app: ConnectedApp) -> None:
        if not isinstance(app, ConnectedApp):
            raise TypeError("app must be a ConnectedApp")
        self.app = app
        self._jwks_cache = jwks.JwksCache()

    @property
    def jwks_cache(self) -> jwks.JwksCache:
        """The org's key sets this client fetched (rate-limited re-fetches); a token
        manager over this client verifies ID tokens in refresh answers with it."""
        return self._jwks_cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"

    # Browser flows (pure: no request is made) -----------------------------------------
    def authorization_url(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | None = None,
        state: str | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        display: str | None = None,
        nonce: str | None = None,
    ) -> AuthorizationRequest:
        """Start the web server flow (PKCE S256 always).

        Returns:
            The URL to redirect the browser to, plus ``state``, ``code_verifier`` and
            ``nonce`` to keep server-side until the callback.
        """
        return web_server.prepare_authorization_url(
            self.app,
            scopes=scopes,
            state=state,
            prompt=prompt,
            login_hint=login_hint,
            display=display,
            nonce=nonce,
        )

    def user_agent_url(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | None = None,
        state: str | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        display: str | None = None,
        nonce: str | None = None,
    ) -> AuthorizationRequest:
        """Start the user-agent (implicit) flow. Discouraged: warns and recommends PKCE."""
        return user_agent.prepare_user_agent_url(
            self.app,
            scopes=scopes,
            state=state,
            prompt=prompt,
            login_hint=login_hint,
            display=display,
            nonce=nonce,
            stacklevel=3,  # attribute the warning to the caller of user_agent_url()
        )

    def parse_authorization_response(
        self, callback: str | Mapping[str, str], *, expected_state: str | None
    ) -> str:
        """Check a web-server callback (URL, query string or params) and return the code.

        ``state`` is compared in constant time first; an ``iss`` parameter must equal the
        login URL; ``error=...`` raises the typed error (``AccessDeniedError``...).
        """
        return web_server.parse_authorization_response(
            callback, expected_state=expected_state, expected_issuer=self.app.login_url
        )

    def parse_user_agent_response(self, fragment: str, *, expected_state: str) -> Token:
        """Parse the ``#access_token=...`` fragment of a user-agent callback."""
        return user_agent.parse_user_agent_response(
            self.app, fragment, expected_state=expected_state
        )

    def verify_signature(self, token: Token) -> None:
        """Check ``token.signature`` (HMAC-SHA256 of ``id + issued_at``); raises SignatureError."""
        issued_at = token.raw.get("issued_at")
        verify_token_signature(
            self.app,
            {"signature": token.signature, "id": token.id_url, "issued_at": issued_at},
        )

    # Flow factories ---------------------------------------------------------------------
    def _exchange_code(
        self,
        code: str,
        *,
        code_verifier: str | None,
        state: str | None,
        expected_state: str | None,
    ) -> Flow[Token]:
        if state is not None or expected_state is not None:
            check_state(state, expected_state)
        return web_server.exchange_code(self.app, code, code_verifier=code_verifier)

    def _refresh(self, token: Token | str) -> Flow[Token]:
        return refresh.refresh_token(self.app, token, jwks_cache=self._jwks_cache)

    def _jwt_bearer(self, *, username: str | None, audience: str | None) -> Flow[Token]:
        return jwt_bearer.jwt_bearer(self.app, username=username, audience=audience)

    def _client_credentials(
        self,
        scopes: tuple[str, ...] | list[str] | None = None,
        use_basic_auth: bool = False,
    ) -> Flow[Token]:
        return client_credentials.client_credentials(
            self.app, scopes=scopes, use_basic_auth=use_basic_auth
        )

    def _token_exchange(
        self,
        subject_token: str,
        subject_token_type: str,
        token_handler: str | None,
        scopes: tuple[str, ...] | list[str] | None,
    ) -> Flow[Token]:
        return token_exchange.token_exchange(
            self.app,
            subject_token,
            subject_token_type,
            token_handler=token_handler,
            scopes=scopes,
        )

    def _password(
        self, username: str, password_: str, security_token: str
    ) -> Flow[Token]:
        # Warn at the caller of SalesforceOAuth.password(): flow ← _password ← password.
        return password.password_grant(
            self.app, username, password_, security_token=security_token, stacklevel=4
        )

    def _start_device_flow(
        self, scopes: tuple[str, ...] | list[str] | None
    ) -> Flow[DeviceAuthorization]:
        return device.start_device_flow(self.app, scopes=scopes)

    def _poll_device_flow(
        self,
        device_auth: DeviceAuthorization,
        timeout: float,
        cancel: Callable[[], bool] | None,
    ) -> Flow[Token]:
        return device.poll_device_flow(
            self.app, device_auth, timeout=timeout, clock=time.monotonic, cancel=cancel
        )

    def _asset_token(
        self,
        access_token: Token | str,
        *,
        actor_token: str | None,
        device_id: str | None,
        asset: Mapping[str, Any] | None,
        name: str | None,
        device_key: Mapping[str, Any] | None,
    ) -> Flow[AssetToken]:
        return asset_token.request_asset_token(
            self.app,
            access_token,
            actor_token=actor_token,
            device_id=device_id,
            asset=asset,
            name=name,
            device_key=device_key,
            jwks_cache=self._jwks_cache,
        )

    def _verify_asset_token(
        self, jwt: str, audience: str, issuer: str | None = None
    ) -> Flow[dict[str, Any]]:
        return asset_token.verify_asset_token(
            self.app, jwt, audience=audience, jwks_cache=self._jwks_cache, issuer=issuer
        )

    def _verify_id_token(self, token: Token, nonce: str | None) -> Flow[dict[str, Any]]:
        return id_token.verify_id_token(
            self.app, token, nonce=nonce, jwks_cache=self._jwks_cache
        )

    def _revoke(self, token: Token | str) -> Flow[None]:
        return revoke.revoke_token(self.app, token)

    def _introspect(self, token: Token | str, hint: str) -> Flow[Introspection]:
        return introspect.introspect_token(self.app, token, hint=hint)

    def _userinfo(self, token: Token) -> Flow[dict[str, Any]]:
        return userinfo.userinfo(self.app, token)

    def _identity(self, token: Token, version: str | None = None) -> Flow[Identity]:
        return identity.identity(self.app, token, version=version)

    def _openid_configuration(self) -> Flow[dict[str, Any]]:
        return discovery.openid_configuration(self.app)

    def _keys(self) -> Flow[dict[str, Any]]:
        return discovery.fetch_keys(self.app)
