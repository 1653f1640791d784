"""The asynchronous Salesforce OAuth client (asyncio or trio, via anyio)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

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
from ._drivers import run_async
from ._loops import PerLoop
from .clients import build_http_client

__all__ = ["AsyncSalesforceOAuth"]

T = TypeVar("T")


async def _close_client(client: httpx.AsyncClient) -> None:
    await client.aclose()


class AsyncSalesforceOAuth(BaseSalesforceOAuth):
    """Every Salesforce OAuth flow over an ``httpx.AsyncClient``; the twin of
    :class:`~sfoauth_core.http.client.SalesforceOAuth` with awaitable methods.

    Args:
        app: the connected app configuration.
        http_client: an ``httpx.AsyncClient`` to reuse (you keep it on the event loop
            it belongs to and close it), or a factory returning a new one. When it is
            a factory or omitted, each running event loop gets its own client, closed
            when that loop ends or by :meth:`aclose`: a client's pooled connections
            never outlive or cross their loop (Django under WSGI runs each async view
            in a new loop; so does every ``asyncio.run``).

    Example:
        >>> oauth = AsyncSalesforceOAuth(app)
        >>> token = await oauth.jwt_bearer()
    """

    def __init__(
        self,
        app: ConnectedApp,
        *,
        http_client: httpx.AsyncClient | Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        super().__init__(app)
        self._shared: httpx.AsyncClient | None = None
        self._per_loop: PerLoop[httpx.AsyncClient] | None = None
        if isinstance(http_client, httpx.AsyncClient):
            self._shared = http_client
        else:
            factory = http_client or self._default_client
            self._per_loop = PerLoop(factory, _close_client)

    def _default_client(self) -> httpx.AsyncClient:
        return build_http_client(self.app, asynchronous=True)

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` passed in, or ``None`` when clients are per loop."""
        return self._shared

    async def current_client(self) -> httpx.AsyncClient:
        """The client for the running event loop (the one passed in, or this loop's)."""
        if self._shared is not None:
            return self._shared
        return await cast("PerLoop[httpx.AsyncClient]", self._per_loop).get()

    async def run(self, flow: Flow[T]) -> T:
        """Drive any flow generator over this loop's client."""
        return await run_async(flow, await self.current_client())

    async def aclose(self) -> None:
        """Close the running loop's own client (a client passed in stays open)."""
        if self._per_loop is not None:
            await self._per_loop.aclose()

    async def __aenter__(self) -> AsyncSalesforceOAuth:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def exchange_code(
        self,
        code: str,
        *,
        code_verifier: str | None,
        state: str | None = None,
        expected_state: str | None = None,
    ) -> Token:
        """Exchange an authorization code (web server flow, with or without a secret)."""
        return await self.run(
            self._exchange_code(
                code,
                code_verifier=code_verifier,
                state=state,
                expected_state=expected_state,
            )
        )

    async def refresh(self, token_or_refresh_token: Token | str) -> Token:
        """Refresh; keeps the old refresh token unless Salesforce rotated it."""
        return await self.run(self._refresh(token_or_refresh_token))

    async def jwt_bearer(
        self, *, username: str | None = None, audience: str | None = None
    ) -> Token:
        """JWT bearer flow (server to server, signed assertion)."""
        return await self.run(self._jwt_bearer(username=username, audience=audience))

    async def client_credentials(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | None = None,
        use_basic_auth: bool = False,
    ) -> Token:
        """Client credentials flow (My Domain only; run-as user set on the app).

        ``use_basic_auth`` sends the credentials in an ``Authorization: Basic`` header
        instead of the form body.
        """
        return await self.run(self._client_credentials(scopes, use_basic_auth))

    async def token_exchange(
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
        return await self.run(
            self._token_exchange(
                subject_token, subject_token_type, token_handler, scopes
            )
        )

    async def password(
        self, username: str, password: str, *, security_token: str = ""
    ) -> Token:
        """Username-password flow. For development only: warns."""
        return await self.run(self._password(username, password, security_token))

    async def start_device_flow(
        self, *, scopes: tuple[str, ...] | list[str] | None = None
    ) -> DeviceAuthorization:
        """Device flow, leg 1: get a user code to show and a device code to poll with."""
        return await self.run(self._start_device_flow(scopes))

    async def poll_device_flow(
        self,
        device: DeviceAuthorization,
        *,
        timeout: float = 600,
        cancel: Callable[[], bool] | None = None,
    ) -> Token:
        """Device flow, leg 2: poll until approved, denied, expired, cancelled or timed out."""
        return await self.run(self._poll_device_flow(device, timeout, cancel))

    async def asset_token(
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
        return await self.run(
            self._asset_token(
                access_token,
                actor_token=actor_token,
                device_id=device_id,
                asset=asset,
                name=name,
                device_key=device_key,
            )
        )

    async def verify_asset_token(
        self, jwt: str, *, audience: str, issuer: str | None = None
    ) -> dict[str, Any]:
        """Verify an asset token's signature against the org's keys, ``aud`` and ``iss``
        (exactly; default the login URL); return its claims."""
        return await self.run(self._verify_asset_token(jwt, audience, issuer))

    async def verify_id_token(
        self, token: Token, *, nonce: str | None = None
    ) -> dict[str, Any]:
        """Verify the OpenID Connect ID token (signature from the org's keys, ``iss``,
        ``aud``, ``exp``, ``nonce``, ``sub``) and return its claims."""
        return await self.run(self._verify_id_token(token, nonce))

    async def revoke(self, token: Token | str) -> None:
        """Revoke a token (a refresh token takes its access tokens with it)."""
        return await self.run(self._revoke(token))

    async def introspect(
        self, token: Token | str, *, hint: str = "access_token"
    ) -> Introspection:
        """RFC 7662 introspection (the app's own tokens unless introspect-all is on)."""
        return await self.run(self._introspect(token, hint))

    async def userinfo(self, token: Token) -> dict[str, Any]:
        """OpenID Connect UserInfo claims."""
        return await self.run(self._userinfo(token))

    async def identity(self, token: Token, *, version: str | None = None) -> Identity:
        """The identity URL's description of the user and org.

        ``version`` (``"64.0"`` or ``"latest"``) fills the ``{version}`` placeholder in
        ``urls``.
        """
        return await self.run(self._identity(token, version))

    async def openid_configuration(self) -> dict[str, Any]:
        """The OpenID discovery document of the login host."""
        return await self.run(self._openid_configuration())

    async def keys(self) -> dict[str, Any]:
        """The JWKS of the login host (``/id/keys``)."""
        return await self.run(self._keys())
