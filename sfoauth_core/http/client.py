"""The synchronous Salesforce OAuth client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..config import ConnectedApp
from ..flows._base import Flow
from ..tokens import (
    AssetToken,
    DeviceAuthorization,
    Identity,
    Introspection,
    Token,
)
from ._base import BaseSalesforceOAuth
from ._drivers import run_sync
from .clients import build_http_client

__all__ = ["SalesforceOAuth"]

T = TypeVar("T")


class SalesforceOAuth(BaseSalesforceOAuth):
    """Every Salesforce OAuth flow over a synchronous ``httpx.Client``.

    Args:
        app: the connected app configuration.
        http_client: an ``httpx.Client`` to reuse (its transport, pool and proxies); when
            omitted, one is created with the app's timeout and closed by :meth:`close`.

    Example:
        >>> oauth = SalesforceOAuth(app)
        >>> request = oauth.authorization_url()
        >>> token = oauth.exchange_code(code, code_verifier=request.code_verifier)
    """

    def __init__(
        self, app: ConnectedApp, *, http_client: httpx.Client | None = None
    ) -> None:
        super().__init__(app)
        self._owns_client = http_client is None
        self.http_client = http_client or build_http_client(
            self.app, asynchronous=False
        )

    def run(self, flow: Flow[T]) -> T:
        """Drive any flow generator over this client."""
        return run_sync(flow, self.http_client)

    def close(self) -> None:
        if self._owns_client:
            self.http_client.close()

    def __enter__(self) -> SalesforceOAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def exchange_code(
        self,
        code: str,
        *,
        code_verifier: str | None,
        state: str | None = None,
        expected_state: str | None = None,
    ) -> Token:
        """Exchange an authorization code (web server flow, with or without a secret)."""
        return self.run(
            self._exchange_code(
                code,
                code_verifier=code_verifier,
                state=state,
                expected_state=expected_state,
            )
        )

    def refresh(self, token_or_refresh_token: Token | str) -> Token:
        """Refresh; keeps the old refresh token unless Salesforce rotated it."""
        return self.run(self._refresh(token_or_refresh_token))

    def jwt_bearer(
        self, *, username: str | None = None, audience: str | None = None
    ) -> Token:
        """JWT bearer flow (server to server, signed assertion)."""
        return self.run(self._jwt_bearer(username=username, audience=audience))

    def client_credentials(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | None = None,
        use_basic_auth: bool = False,
    ) -> Token:
        """Client credentials flow (My Domain only; run-as user set on the app).

        ``use_basic_auth`` sends the credentials in an ``Authorization: Basic`` header
        instead of the form body.
        """
        return self.run(self._client_credentials(scopes, use_basic_auth))

    def token_exchange(
        self,
        subject_token: str,
        subject_token_type: str,
        *,
        token_handler: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
    ) -> Token:
        """Token exchange: trade another identity provider's token (Okta, Auth0, Entra
        ID...) for a Salesforce token (My Domain or site only; sent once, never
        retried; subject tokens over 10,000 characters are refused before sending)."""
        return self.run(
            self._token_exchange(
                subject_token, subject_token_type, token_handler, scopes
            )
        )

    def password(
        self, username: str, password: str, *, security_token: str = ""
    ) -> Token:
        """Username-password flow. For development only: warns."""
        return self.run(self._password(username, password, security_token))

    def start_device_flow(
        self, *, scopes: tuple[str, ...] | list[str] | None = None
    ) -> DeviceAuthorization:
        """Device flow, leg 1: get a user code to show and a device code to poll with."""
        return self.run(self._start_device_flow(scopes))

    def poll_device_flow(
        self,
        device: DeviceAuthorization,
        *,
        timeout: float = 600,
        cancel: Callable[[], bool] | None = None,
    ) -> Token:
        """Device flow, leg 2: poll until approved, denied, expired, cancelled or timed out."""
        return self.run(self._poll_device_flow(device, timeout, cancel))

    def asset_token(
        self,
        access_token: Token | str,
        *,
        actor_token: str | None = None,
        device_id: str | None = None,
        asset: Mapping[str, Any] | None = None,
        name: str | None = None,
        device_key: Mapping[str, Any] | None = None,
    ) -> AssetToken:
        """Exchange an access token (and an optional actor token) for an asset token."""
        return self.run(
            self._asset_token(
                access_token,
                actor_token=actor_token,
                device_id=device_id,
                asset=asset,
                name=name,
                device_key=device_key,
            )
        )

    def verify_asset_token(
        self, jwt: str, *, audience: str, issuer: str | None = None
    ) -> dict[str, Any]:
        """Verify an asset token's signature against the org's keys, ``aud`` and ``iss``
        (exactly; default the login URL); return its claims."""
        return self.run(self._verify_asset_token(jwt, audience, issuer))

    def verify_id_token(
        self, token: Token, *, nonce: str | None = None
    ) -> dict[str, Any]:
        """Verify the OpenID Connect ID token (signature from the org's keys, ``iss``,
        ``aud``, ``exp``, ``nonce``, ``sub``) and return its claims."""
        return self.run(self._verify_id_token(token, nonce))

    def revoke(self, token: Token | str) -> None:
        """Revoke a token (a refresh token takes its access tokens with it)."""
        return self.run(self._revoke(token))

    def introspect(
        self, token: Token | str, *, hint: str = "access_token"
    ) -> Introspection:
        """RFC 7662 introspection (the app's own tokens unless introspect-all is on)."""
        return self.run(self._introspect(token, hint))

    def userinfo(self, token: Token) -> dict[str, Any]:
        """OpenID Connect UserInfo claims."""
        return self.run(self._userinfo(token))

    def identity(self, token: Token, *, version: str | None = None) -> Identity:
        """The identity URL's description of the user and org.

        ``version`` (``"64.0"`` or ``"latest"``) fills the ``{version}`` placeholder in
        ``urls``.
        """
        return self.run(self._identity(token, version))

    def openid_configuration(self) -> dict[str, Any]:
        """The OpenID discovery document of the login host."""
        return self.run(self._openid_configuration())

    def keys(self) -> dict[str, Any]:
        """The JWKS of the login host (``/id/keys``)."""
        return self.run(self._keys())
