"""Assembly: the starlette app and :class:`SalesforceEmulator`, the public facade."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from . import authorize as authorize_module
from . import extras, operations, resources, rest
from .constants import AUTHORIZE_PATH, CONTROL_PREFIX, DEFAULT_USERNAME, TOKEN_PATH
from .control import control_routes
from .middleware import EmulatorMiddleware
from .oauth import token_endpoint
from .state import (
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    EmulatorState,
    Fault,
    LogEntry,
)
from .transport import EmulatorAsyncTransport, EmulatorTransport

if TYPE_CHECKING:
    from .tls import EmulatorTLS

__all__ = ["SalesforceEmulator", "build_app"]


def build_app(state: EmulatorState) -> Starlette:
    """The starlette app serving every emulated endpoint for ``state``."""
    any_method = ["GET", "POST"]
    routes = [
        Route(TOKEN_PATH, token_endpoint, methods=any_method),
        Route(AUTHORIZE_PATH, authorize_module.authorize_endpoint, methods=any_method),
        Route(
            "/setup/connect",
            authorize_module.device_verification_endpoint,
            methods=any_method,
        ),
        Route("/services/oauth2/revoke", resources.revoke, methods=any_method),
        Route("/services/oauth2/introspect", resources.introspect, methods=["POST"]),
        Route("/services/oauth2/userinfo", resources.userinfo, methods=any_method),
        Route("/services/oauth2/register", extras.register, methods=["POST"]),
        Route("/services/oauth2/success", extras.oauth_page, methods=["GET"]),
        Route("/services/oauth2/echo", extras.oauth_page, methods=["GET"]),
        Route("/services/Soap/u/{version}", extras.soap_login, methods=["POST"]),
        Route("/id/keys", resources.jwks, methods=["GET"]),
        Route("/id/{org_id}/{user_id}", resources.identity, methods=any_method),
        Route(
            "/.well-known/openid-configuration", resources.discovery, methods=["GET"]
        ),
        Route(
            "/.well-known/auth-configuration",
            resources.auth_configuration,
            methods=["GET"],
        ),
        Route("/services/data", rest.rest_endpoint, methods=rest.REST_METHODS),
        Route(
            "/services/data/{rest:path}", rest.rest_endpoint, methods=rest.REST_METHODS
        ),
        Route(
            "/services/apexrest/{rest:path}",
            rest.apex_rest_endpoint,
            methods=rest.REST_METHODS,
        ),
        *control_routes(CONTROL_PREFIX),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(EmulatorMiddleware, state=state)]
    )
    app.state.emulator_state = state
    return app


class SalesforceEmulator:
    """A fake Salesforce authorization server (and a tiny REST API) for tests and demos.

    It starts with the default org ``acme``, users (``jane@acme.com``, the run-as
    ``integration@acme.com``, the inactive ``inactive@acme.com``) and apps (``web``,
    ``public``, ``jwt``, ``cc``, ``device``, ``asset``). Every policy is a field of
    :class:`EmulatedOrg`, :class:`EmulatedUser` or :class:`EmulatedApp`.

    Args:
        defaults: install the default org, users and apps.
        loopback_kind: what a loopback host (``127.0.0.1``) is: ``"my_domain"`` (the
            org's My Domain and login host at once; client credentials allowed) or
            ``"login"``.

    Example:
        >>> emu = SalesforceEmulator()
        >>> client = httpx.AsyncClient(transport=emu.async_transport(),
        ...                            base_url="https://login.salesforce.com")
    """

    def __init__(
        self,
        *,
        defaults: bool = True,
        loopback_kind: Literal["my_domain", "login"] = "my_domain",
    ) -> None:
        self.state = EmulatorState()
        operations.set_loopback_kind(self.state, loopback_kind)
        self._defaults = defaults
        if defaults:
            operations.seed_defaults(self.state)
        self.app = build_app(self.state)
        self.app.state.emulator = self
        self.base_url: str | None = None

    # ------------------------------------------------------------------ data
    @property
    def org(self) -> EmulatedOrg:
        """The default org."""
        return self.state.orgs[self.state.default_org]

    @property
    def user(self) -> EmulatedUser:
        """The default user (``jane@acme.com``)."""
        user = self.state.user(self.state.default_user)
        if user is None:
            raise LookupError("the emulator has no default user")
        return user

    @property
    def apps(self) -> dict[str, EmulatedApp]:
        """Apps by name (``web``, ``public``, ``jwt``, ``cc``, ``device``,
        ``asset``)."""
        return self.state.apps

    @property
    def orgs(self) -> dict[str, EmulatedOrg]:
        """Orgs by name."""
        return self.state.orgs

    @property
    def users(self) -> dict[str, EmulatedUser]:
        """Users by lower-case username."""
        return self.state.users

    def add_org(
        self, name: str, *, org_id: str, my_domain: str | None = None, **policies: Any
    ) -> EmulatedOrg:
        """Add (or replace) an org.

        Args:
            name: key of the org.
            org_id: 15- or 18-character ``00D`` id.
            my_domain: My Domain name (defaults to ``name``).
            **policies: other :class:`EmulatedOrg` fields (e.g. ``sandbox_name="dev"``).
        """
        return operations.add_org(
            self.state, name, org_id=org_id, my_domain=my_domain, **policies
        )

    def add_user(
        self,
        username: str,
        password: str,
        *,
        user_id: str,
        org: str | None = None,
        **fields: Any,
    ) -> EmulatedUser:
        """Add (or replace) a user.

        Args:
            username: login name.
            password: password.
            user_id: 15- or 18-character ``005`` id.
            org: org name (default org when omitted).
            **fields: other :class:`EmulatedUser` fields (``active``,
                ``ip_restricted``…).
        """
        return operations.add_user(
            self.state, username, password, user_id=user_id, org=org, **fields
        )

    def add_app(self, name: str, *, client_id: str, **policies: Any) -> EmulatedApp:
        """Add (or replace) an app.

        Args:
            name: key of the app.
            client_id: consumer key.
            **policies: other :class:`EmulatedApp` fields. ``jwt_key=True`` generates a
                key pair and sets ``certificate_pem``/``private_key_pem``;
                ``kind="external_client_app"`` makes an External Client App, and
                ``propagation_seconds=300`` has it answer ``invalid_client_id`` for
                five minutes of the emulator's clock (reference 15.5).

        Raises:
            ValueError: an unknown field, or a ``certificate_pem`` that is not an X.509
                certificate or RSA public key PEM.
        """
        return operations.add_app(self.state, name, client_id=client_id, **policies)

    def upload_certificate(self, name: str, certificate_pem: str) -> EmulatedApp:
        """Give app ``name`` a JWT bearer certificate, as uploading one in Setup does.

        ``certificate_pem`` is an X.509 certificate PEM (what ``openssl req -x509``
        makes and what Salesforce takes) or a public key PEM. The app's
        ``private_key_pem`` is cleared: the matching key stays with your client.

        Raises:
            KeyError: no app ``name``.
            ValueError: not a certificate or RSA public key PEM.
        """
        return operations.upload_certificate(self.state, name, certificate_pem)

    # ------------------------------------------------------------------ transports
    def async_transport(self) -> EmulatorAsyncTransport:
        """An ``httpx.ASGITransport`` (honouring read timeouts) for
        ``httpx.AsyncClient``."""
        return EmulatorAsyncTransport(app=self.app, client=("127.0.0.1", 50000))

    def transport(self) -> EmulatorTransport:
        """A synchronous, thread-safe httpx transport for ``httpx.Client``."""
        return EmulatorTransport(self.app)

    # ------------------------------------------------------------------ control
    @property
    def auto_approve(self) -> str | None:
        """Username that authorize requests log in and consent as, without pages."""
        return self.state.auto_approve

    @auto_approve.setter
    def auto_approve(self, username: str | None) -> None:
        operations.set_auto_approve(self.state, username)

    @property
    def auto_consent(self) -> Literal["allow", "deny"]:
        """What the scripted user answers on the consent page."""
        return self.state.auto_consent

    @auto_consent.setter
    def auto_consent(self, value: Literal["allow", "deny"]) -> None:
        operations.set_auto_consent(self.state, value)

    @property
    def loopback_kind(self) -> Literal["my_domain", "login"]:
        """What a loopback host acts as."""
        return self.state.loopback_kind

    @loopback_kind.setter
    def loopback_kind(self, value: Literal["my_domain", "login"]) -> None:
        operations.set_loopback_kind(self.state, value)

    @property
    def loopback_hosts(self) -> dict[str, str]:
        """Loopback host names given to other orgs: ``{"localhost": "beta"}`` makes
        ``http://localhost:<port>`` org ``beta``'s My Domain and login host (for a
        sandbox org, its test.salesforce.com), while ``127.0.0.1`` stays the default
        org's. A copy; assign to change."""
        return dict(self.state.loopback_hosts)

    @loopback_hosts.setter
    def loopback_hosts(self, value: dict[str, str]) -> None:
        operations.set_loopback_hosts(self.state, value)

    @property
    def host_binding(self) -> Literal["family", "off"]:
        """``"family"`` (default): a token is served only by the hosts of its org's
        environment that issued it (production: login.salesforce.com and the My
        Domain; sandbox: test.salesforce.com and the sandbox My Domain; a site login:
        that site), as at Salesforce: a refresh elsewhere answers ``invalid_grant``,
        a revoke ``invalid_token``, introspection ``active: false``. ``"off"``: any
        host serves any token."""
        return self.state.host_binding

    @host_binding.setter
    def host_binding(self, value: Literal["family", "off"]) -> None:
        operations.set_host_binding(self.state, value)

    def expire_access_tokens(self, user: str | None = None) -> int:
        """Expire every access token (or one user's); REST then answers 401.

        Returns:
            How many tokens were expired.
        """
        return operations.expire_access_tokens(self.state, user)

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (codes, device codes, refresh policies)."""
        operations.advance_time(self.state, seconds)

    def approve_device(self, user_code: str, user: str = DEFAULT_USERNAME) -> None:
        """Approve a pending device authorization as ``user``.

        Raises:
            KeyError: no such pending user code (or unknown user).
        """
        operations.set_device_status(self.state, user_code, user, True)

    def deny_device(self, user_code: str) -> None:
        """Deny a pending device authorization (the poll then gets ``access_denied``).

        Raises:
            KeyError: no such pending user code.
        """
        operations.set_device_status(self.state, user_code, None, False)

    def calls(self, grant_type: str | None = None) -> int:
        """Token-endpoint calls so far (all, or for one ``grant_type``;
        ``"device_code"`` counts device authorization requests)."""
        return operations.calls(self.state, grant_type)

    def call_counts(self) -> dict[str, int]:
        """Token-endpoint calls by grant type."""
        return operations.call_counts(self.state)

    @property
    def request_log(self) -> list[LogEntry]:
        """A copy of the request log (secrets masked)."""
        return operations.request_log(self.state)

    @property
    def reuse_detected(self) -> int:
        """How many times a rotated-out refresh token was replayed."""
        return operations.reuse_detected(self.state)

    @property
    def concurrent_refresh_rejections(self) -> int:
        """How many refreshes were refused because another refresh of the same
        refresh token was being processed (reference 15.1)."""
        return operations.concurrent_refresh_rejections(self.state)

    def inject_fault(self, fault: Fault) -> None:
        """Make the next ``fault.count`` matching requests fail (see :class:`Fault`)."""
        operations.inject_fault(self.state, fault)

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        operations.clear_faults(self.state)

    def reset(self) -> None:
        """Back to a fresh emulator: default data and policies, no tokens, log or
        faults."""
        operations.reset(self.state, defaults=self._defaults)

    def authorize(
        self,
        *,
        client_id: str | None = None,
        redirect_uri: str | None = None,
        user: str = DEFAULT_USERNAME,
        approve: bool = True,
        response_type: str = "code",
        scope: str | None = None,
        state: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        nonce: str | None = None,
        host: str | None = None,
        app: str = "web",
    ) -> str:
        """Run an authorization as ``user`` without a browser; returns the callback URL.

        Args:
            client_id: consumer key (default: the ``app``'s).
            redirect_uri: callback URL (default: the app's first).
            user: who logs in.
            approve: ``False`` answers ``access_denied``.
            response_type: ``code``, ``token``, ``token id_token`` or ``hybrid_token``.
            scope: requested scopes.
            state: echoed ``state``.
            code_challenge: PKCE S256 challenge.
            code_challenge_method: sent as given.
            nonce: ID-token nonce.
            host: authorize host URL (default ``https://login.salesforce.com``, or the
                served base URL).
            app: app name used for defaults.

        Raises:
            ValueError: the request would be rendered as an error page (bad client id or
                redirect URI), or the user is unknown.
        """
        return operations.authorize(
            self.state,
            base_url=host or self.base_url or "https://login.salesforce.com",
            app=app,
            client_id=client_id,
            redirect_uri=redirect_uri,
            user=user,
            approve=approve,
            response_type=response_type,
            scope=scope,
            state_param=state,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            nonce=nonce,
        )

    def issue_tokens(
        self,
        app: str = "web",
        user: str = DEFAULT_USERNAME,
        *,
        scopes: str | None = None,
        refresh: bool | None = None,
        issuer: str = "https://login.salesforce.com",
    ) -> dict[str, str]:
        """Issue tokens directly (no HTTP), as a web-server flow would; returns the
        body."""
        return operations.issue_tokens(
            self.state, app, user, scopes=scopes, refresh=refresh, issuer=issuer
        )

    # ------------------------------------------------------------------ serving
    @contextmanager
    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: EmulatorTLS | None = None
    ) -> Iterator[str]:
        """Serve on a loopback port in a background thread; yields the base URL.

        Args:
            host: loopback address to bind.
            port: port (0: a free one).
            tls: serve HTTPS with these certificates (:meth:`EmulatorTLS.create`); the
                base URL (and ``instance_url``) is then ``https://…``.

        Example:
            >>> with emu.serve() as base_url:
            ...     httpx.get(base_url + "/.well-known/openid-configuration")
        """
        from .server import serve_in_thread

        with serve_in_thread(self, host, port, tls=tls) as base_url:
            self.base_url = base_url
            try:
                yield base_url
            finally:
                self.base_url = None
