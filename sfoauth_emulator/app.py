"""Assembly: the starlette app and :class:`SalesforceEmulator`, the public facade."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from . import authorize as authorize_module
from . import extras, resources, rest
from .constants import AUTHORIZE_PATH, CONTROL_PREFIX, DEFAULT_USERNAME, TOKEN_PATH
from .control import control_routes
from .crypto import (
    cached_private_key,
    check_certificate_pem,
    private_pem,
    public_pem,
)
from .defaults import install_defaults
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
from .vhosts import HostContext

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


def _fields(cls: type[Any], values: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")


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
        self.state.loopback_kind = loopback_kind
        self._defaults = defaults
        if defaults:
            with self.state.lock:
                install_defaults(self.state)
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
        from ._ids import to_18

        _fields(EmulatedOrg, policies)
        org = EmulatedOrg(
            name=name, org_id=to_18(org_id), my_domain=my_domain or name, **policies
        )
        with self.state.lock:
            self.state.orgs[name] = org
        return org

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
        from ._ids import to_18

        _fields(EmulatedUser, fields)
        fields.setdefault("email", username)
        user = EmulatedUser(
            username=username,
            password=password,
            user_id=to_18(user_id),
            org=org or self.state.default_org,
            **fields,
        )
        with self.state.lock:
            if user.org not in self.state.orgs:
                raise ValueError(f"unknown org {user.org!r}")
            self.state.users[username.lower()] = user
        return user

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
        if policies.pop("jwt_key", False):
            key = cached_private_key(f"app:{name}")
            policies.setdefault("certificate_pem", public_pem(key))
            policies.setdefault("private_key_pem", private_pem(key))
        if policies.get("certificate_pem") is not None:
            check_certificate_pem(policies["certificate_pem"])
        _fields(EmulatedApp, policies)
        app = EmulatedApp(name=name, client_id=client_id, **policies)
        with self.state.lock:
            if app.created_at is None:
                app.created_at = self.state.now()
            self.state.apps[name] = app
        return app

    def upload_certificate(self, name: str, certificate_pem: str) -> EmulatedApp:
        """Give app ``name`` a JWT bearer certificate, as uploading one in Setup does.

        ``certificate_pem`` is an X.509 certificate PEM (what ``openssl req -x509``
        makes and what Salesforce takes) or a public key PEM. The app's
        ``private_key_pem`` is cleared: the matching key stays with your client.

        Raises:
            KeyError: no app ``name``.
            ValueError: not a certificate or RSA public key PEM.
        """
        check_certificate_pem(certificate_pem)
        with self.state.lock:
            app = self.state.apps[name]
            app.certificate_pem = certificate_pem
            app.private_key_pem = None
        return app

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
        with self.state.lock:
            if username is not None and self.state.user(username) is None:
                raise ValueError(f"unknown user {username!r}")
            self.state.auto_approve = username

    @property
    def auto_consent(self) -> Literal["allow", "deny"]:
        """What the scripted user answers on the consent page."""
        return self.state.auto_consent

    @auto_consent.setter
    def auto_consent(self, value: Literal["allow", "deny"]) -> None:
        self.state.auto_consent = value

    @property
    def loopback_kind(self) -> Literal["my_domain", "login"]:
        """What a loopback host acts as."""
        return self.state.loopback_kind

    @loopback_kind.setter
    def loopback_kind(self, value: Literal["my_domain", "login"]) -> None:
        self.state.loopback_kind = value

    @property
    def loopback_hosts(self) -> dict[str, str]:
        """Loopback host names given to other orgs: ``{"localhost": "beta"}`` makes
        ``http://localhost:<port>`` org ``beta``'s My Domain and login host (for a
        sandbox org, its test.salesforce.com), while ``127.0.0.1`` stays the default
        org's. A copy; assign to change."""
        return dict(self.state.loopback_hosts)

    @loopback_hosts.setter
    def loopback_hosts(self, value: dict[str, str]) -> None:
        hosts = {str(k).strip("[]").lower(): str(v) for k, v in dict(value).items()}
        with self.state.lock:
            unknown = sorted(v for v in hosts.values() if v not in self.state.orgs)
            if unknown:
                raise ValueError(f"unknown org(s) {', '.join(map(repr, unknown))}")
            self.state.loopback_hosts = hosts

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
        if value not in ("family", "off"):
            raise ValueError("host_binding must be 'family' or 'off'")
        self.state.host_binding = value

    def expire_access_tokens(self, user: str | None = None) -> int:
        """Expire every access token (or one user's); REST then answers 401.

        Returns:
            How many tokens were expired.
        """
        with self.state.lock:
            now = self.state.now()
            count = 0
            for record in self.state.access_tokens.values():
                if user is None or record.username.lower() == user.lower():
                    if record.expires_at > now:
                        count += 1
                    record.expires_at = now - 1
            return count

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (codes, device codes, refresh policies)."""
        with self.state.lock:
            self.state.time_offset += seconds

    def approve_device(self, user_code: str, user: str = DEFAULT_USERNAME) -> None:
        """Approve a pending device authorization as ``user``.

        Raises:
            KeyError: no such pending user code (or unknown user).
        """
        with self.state.lock:
            authorize_module.set_device_status(self.state, user_code, user, True)

    def deny_device(self, user_code: str) -> None:
        """Deny a pending device authorization (the poll then gets ``access_denied``).

        Raises:
            KeyError: no such pending user code.
        """
        with self.state.lock:
            authorize_module.set_device_status(self.state, user_code, None, False)

    def calls(self, grant_type: str | None = None) -> int:
        """Token-endpoint calls so far (all, or for one ``grant_type``;
        ``"device_code"`` counts device authorization requests)."""
        with self.state.lock:
            if grant_type is None:
                return sum(self.state.call_counts.values())
            return self.state.call_counts.get(grant_type, 0)

    def call_counts(self) -> dict[str, int]:
        """Token-endpoint calls by grant type."""
        with self.state.lock:
            return dict(self.state.call_counts)

    @property
    def request_log(self) -> list[LogEntry]:
        """A copy of the request log (secrets masked)."""
        with self.state.lock:
            return list(self.state.log)

    @property
    def reuse_detected(self) -> int:
        """How many times a rotated-out refresh token was replayed."""
        with self.state.lock:
            return self.state.reuse_detected

    @property
    def concurrent_refresh_rejections(self) -> int:
        """How many refreshes were refused because another refresh of the same
        refresh token was being processed (reference 15.1)."""
        with self.state.lock:
            return self.state.concurrent_refresh_rejections

    def inject_fault(self, fault: Fault) -> None:
        """Make the next ``fault.count`` matching requests fail (see :class:`Fault`)."""
        with self.state.lock:
            self.state.faults.append(dataclasses.replace(fault))

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self.state.lock:
            self.state.faults.clear()

    def reset(self) -> None:
        """Back to a fresh emulator: default data and policies, no tokens, log or
        faults."""
        with self.state.lock:
            self.state.clear_runtime()
            if self._defaults:
                install_defaults(self.state)

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
        from .vhosts import resolve_host

        emulated = self.apps[app]
        params = {
            "client_id": client_id or emulated.client_id,
            "redirect_uri": redirect_uri or emulated.callback_urls[0],
            "response_type": response_type,
        }
        optional = {
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
            "nonce": nonce,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        base = host or self.base_url or "https://login.salesforce.com"
        scheme, _, rest = base.partition("://")
        netloc, _, path = rest.partition("/")
        scope_dict: dict[str, Any] = {
            "scheme": scheme,
            "headers": [(b"host", netloc.encode())],
            "path": "/" + path.rstrip("/") + AUTHORIZE_PATH if path else AUTHORIZE_PATH,
        }
        with self.state.lock:
            resolved = resolve_host(self.state, scope_dict)
            if resolved is None:
                raise ValueError(f"unknown host {netloc!r}")
            ctx: HostContext = resolved[0]
            try:
                outcome = authorize_module.decide_authorization(
                    self.state, ctx, params, forced_user=user, forced_consent=approve
                )
            except authorize_module.PageError as exc:
                raise ValueError(f"{exc.error}: {exc.description}") from None
        return outcome.location

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
        from .tokens import Grant, issue_token_response, resolve_scopes, wants_refresh

        with self.state.lock:
            emulated = self.state.apps[app]
            subject = self.state.user(user)
            if subject is None:
                raise ValueError(f"unknown user {user!r}")
            org = self.state.org_of(subject)
            granted = resolve_scopes(emulated, scopes)
            grant = Grant(
                emulated,
                subject,
                org,
                granted,
                issuer,
                org.my_domain_url,
                "authorization_code",
            )
            return issue_token_response(
                self.state,
                grant,
                refresh=wants_refresh(granted) if refresh is None else refresh,
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
