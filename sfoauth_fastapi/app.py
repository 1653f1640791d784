"""``SFOAuth``: explicit configuration, the router, the dependencies and the lifespan.

Example:
    >>> sf = SFOAuth(
    ...     ConnectedApp(client_id=..., client_secret=..., redirect_uri=...),
    ...     store=SQLAlchemyTokenStore(engine, TokenCipher([key])),
    ...     secret_key=settings.secret_key,
    ...     user_key=current_user_id,          # your auth; returns str | None
    ... )
    >>> api = FastAPI(lifespan=sf.lifespan)
    >>> api.include_router(sf.router, prefix="/salesforce")
    >>> @api.get("/accounts")
    ... async def accounts(sf_session: Annotated[SalesforceSession, Depends(sf.session)]):
    ...     return (await sf_session.client.get("/services/data/v62.0/limits")).json()
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast

import httpx
from cachetools import TTLCache
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from sfoauth_core.config import ConnectedApp, Secret
from sfoauth_core.connections import Connection
from sfoauth_core.events import TokenEvents
from sfoauth_core.exceptions import (
    ConfigurationError,
    ReauthorizationRequired,
    SFOAuthConfigurationError,
    SFOAuthError,
    TokenNotFoundError,
    app_access_hint,
)
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.clients import build_http_client, build_transport
from sfoauth_core.manager import DEFAULT_CACHE_TTL, AsyncTokenManager
from sfoauth_core.storage.base import AsyncTokenStore
from sfoauth_core.tokens import Identity, Token

from ._urls import safe_next_path
from .dependencies import (
    ConnectionDependency,
    CookieIdentity,
    SalesforceSession,
    _SharedTransport,
    is_salesforce_failure,
)
from .errors import (
    ErrorCode,
    SFOAuthHTTPException,
    code_for,
    error_responses,
    http_error,
    log_failure,
)
from .pages import error_response
from .router import get_sfoauth_router, here_path, login_redirect_path, with_next
from .state import (
    DEFAULT_FLOW_TTL,
    MIN_SECRET_KEY_LENGTH,
    CookieSigner,
    InMemoryPendingFlowStore,
    PendingFlowStore,
    RedisPendingFlowStore,
)

__all__ = [
    "ConfigIssue",
    "Connection",
    "RedactCallbackFilter",
    "SFOAuth",
    "SFOAuthConfigurationError",
]

logger = logging.getLogger("sfoauth.fastapi")

Unauthenticated = Literal["auto", "401", "redirect"]


#: The prefix of every start-up check id of this package (``sfoauth_fastapi.E001``).
NAMESPACE = "sfoauth_fastapi"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One start-up finding: ``sfoauth_fastapi.E0nn`` (refuses to start) or ``W0nn``;
    one id per problem."""

    id: str
    setting: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"[{self.id}] {self.setting}: {self.message} (hint: {self.hint})"


# What to do about a server-to-server connection's problem, by the setting at fault.
_CONNECTION_HINTS = {
    "private_key": "pass the PEM private key matching the app's certificate",
    "username": "set the Salesforce username the connection acts as",
    "audience": "use https://login.salesforce.com, https://test.salesforce.com or your "
    "Experience Cloud site URL",
    "client_secret": "copy the consumer secret from the app",
    "login_url": "use https://<name>.my.salesforce.com",
}


_REDACT = re.compile(
    r"(?i)([?&](?:code|state|access_token|refresh_token|id_token|error_description)=)"
    r"[^&\s\"]*"
)


class RedactCallbackFilter(logging.Filter):
    """Masks ``code``/``state``/token query values in log records (uvicorn's access
    log prints full request paths, including a callback's query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _REDACT.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _REDACT.sub(r"\1[redacted]", record.msg)
        return True


def _install_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactCallbackFilter) for f in target.filters):
            target.addFilter(RedactCallbackFilter())


def _depends_on(dependant: Dependant, targets: set[Any]) -> bool:
    """True when ``dependant`` (a route's dependency tree) calls one of ``targets``."""
    return any(
        sub.call in targets or _depends_on(sub, targets)
        for sub in dependant.dependencies
    )


def _host_of(exc: BaseException) -> str:
    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return "?"
    return str(request.url.host)


def _default_pending_store(store: AsyncTokenStore, ttl: float) -> PendingFlowStore:
    from .storage import SQLAlchemyTokenStore

    if isinstance(store, SQLAlchemyTokenStore):
        return store.pending_flows(ttl=ttl)
    try:
        from sfoauth_core.storage.redis import AsyncRedisTokenStore
    except ImportError:  # pragma: no cover - redis extra missing
        return InMemoryPendingFlowStore(ttl=ttl)
    if isinstance(store, AsyncRedisTokenStore):
        return RedisPendingFlowStore(
            store.redis, store.cipher, prefix=store.prefix, ttl=ttl
        )
    return InMemoryPendingFlowStore(ttl=ttl)


class SFOAuth:
    """Salesforce OAuth for one FastAPI app: configuration, routes and dependencies.

    Args:
        app: the connected app used for user logins (web server flow + PKCE).
        store: where tokens live (``SQLAlchemyTokenStore``, ``AsyncRedisTokenStore``,
            ``AsyncInMemoryTokenStore`` for tests).
        secret_key: ≥ 32 characters; signs the login-flow and identity cookies.
        user_key: a FastAPI dependency returning the current app user's stable id
            (``str``) or ``None``. Default: :class:`CookieIdentity`, an anonymous
            visitor id in a signed cookie (demos, single-user tools).
        connections: named server-to-server connections for :meth:`connection`.
        pending_flows: where started logins wait (default: next to the tokens).
        http_client: an ``httpx.AsyncClient`` for calls to Salesforce's OAuth
            endpoints (not closed by sfoauth).
        transport: an ``httpx`` async transport for every call sfoauth makes (OAuth
            and API); tests pass the emulator's.
        unauthenticated: what :attr:`session` does without a connection: ``"401"``,
            ``"redirect"`` (to login, with ``next``), or ``"auto"`` (redirect
            browsers asking for HTML with GET, 401 otherwise).
        default_next: where to land after login when ``next`` is missing or unsafe.
        login_path: the login URL to redirect to when the router is not mounted on
            the request's app.
        login_on_get: start the login on ``GET /login`` (a redirect to Salesforce)
            instead of showing the "Connect to Salesforce" page whose button starts
            it. Off by default: a page view (after a disconnect, or a link from
            another site) never starts a login without the user's click.
        app_login_url: your app's own login page (``"/login"``). Browsers that your
            ``user_key`` does not identify are sent there (303, with ``next``) from
            routes needing Salesforce and from the login route; without it they get
            401 ``SFOAUTH_NOT_AUTHENTICATED``.
        cookie_secure: mark cookies ``Secure`` (turn off only for http development).
        flow_ttl: seconds a started login may take.
        events: token lifecycle hooks.
        on_login: ``hook(request, session)``, sync or async, after a login is stored.
        retry: retry policy for refreshes.
        session_timeout: the org's session timeout in seconds, when known.
        cache_ttl: seconds a token is served from memory before the store is read.
        login_urls: other login URLs a user may pick with ``?domain=<name>`` on the
            login route (Django's ``SFOAUTH["LOGIN_URLS"]``), e.g.
            ``{"sandbox": "https://test.salesforce.com"}``. The grant remembers the
            host it was issued by: its refreshes, revocation and introspection go
            there.

    Raises:
        SFOAuthConfigurationError: every misconfiguration, each with an id and a hint.
    """

    def __init__(
        self,
        app: ConnectedApp,
        *,
        store: AsyncTokenStore,
        secret_key: str | Secret | None,
        user_key: Callable[..., Any] | None = None,
        connections: Mapping[str, ConnectedApp | Connection] | None = None,
        pending_flows: PendingFlowStore | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        unauthenticated: Unauthenticated = "auto",
        default_next: str = "/",
        login_path: str = "/salesforce/login",
        login_on_get: bool = False,
        app_login_url: str | None = None,
        cookie_secure: bool = True,
        flow_ttl: float = DEFAULT_FLOW_TTL,
        events: TokenEvents | None = None,
        on_login: Callable[..., Any] | None = None,
        retry: RetryPolicy | None = None,
        session_timeout: float | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        login_urls: Mapping[str, str] | None = None,
    ) -> None:
        named = {
            name: c if isinstance(c, Connection) else Connection(c)
            for name, c in (connections or {}).items()
        }
        issues = self._check(
            app,
            store,
            secret_key,
            named,
            unauthenticated,
            default_next,
            flow_ttl,
            app_login_url,
        )
        #: The login URLs a user may pick (``?domain=<name>``), each as the app
        #: configured for it.
        self.login_apps: dict[str, ConnectedApp] = {}
        for name, url in (login_urls or {}).items():
            try:
                self.login_apps[str(name)] = app.replace(login_url=url)
            except (ConfigurationError, AttributeError, TypeError):
                issues.append(
                    ConfigIssue(
                        "sfoauth_fastapi.E011",
                        f"login_urls[{name!r}]",
                        "is not a usable Salesforce login URL",
                        "use an https URL on a Salesforce host (test.salesforce.com, "
                        "a My Domain or site); list custom domains in the app's "
                        "extra_hosts",
                    )
                )
        errors = [i for i in issues if i.id.startswith(f"{NAMESPACE}.E")]
        if errors:
            raise SFOAuthConfigurationError(errors)
        self.warnings = [i for i in issues if i.id.startswith(f"{NAMESPACE}.W")]
        self.app = app
        self.store = store
        self.signer = CookieSigner(secret_key)
        self.cookie_secure = cookie_secure
        self.identity = (
            CookieIdentity(self.signer, secure=cookie_secure)
            if user_key is None
            else None
        )
        self.user_key: Callable[..., Any] = user_key or self.identity  # type: ignore[assignment]
        self.flow_ttl = float(flow_ttl)
        self.flow_cookie_name = (
            "__Host-sfoauth_flow" if cookie_secure else "sfoauth_flow"
        )
        self.disconnected_cookie_name = (
            "__Host-sfoauth_disconnected" if cookie_secure else "sfoauth_disconnected"
        )
        self.login_on_get = login_on_get
        self.app_login_url = app_login_url
        self.unauthenticated: Unauthenticated = unauthenticated
        self.default_next = default_next
        self.login_path = login_path
        self.on_login = on_login
        self.pending_flows = pending_flows or _default_pending_store(store, flow_ttl)
        self.identities: TTLCache[str, Identity] = TTLCache(maxsize=10_000, ttl=300)

        self._owned: list[Any] = []
        if transport is None:
            # The core's default pool: the same proxy behaviour as sfoauth_django's.
            transport = build_transport(app, asynchronous=True)
            self._owned.append(transport)
        self.transport = transport
        if http_client is None:
            http_client = build_http_client(
                app, asynchronous=True, transport=_SharedTransport(transport)
            )
            self._owned.append(http_client)
        self.oauth = AsyncSalesforceOAuth(app, http_client=http_client)
        self.events = events if events is not None else TokenEvents()
        manager_options: dict[str, Any] = {
            "retry": retry,
            "session_timeout": session_timeout,
            "cache_ttl": cache_ttl,
        }
        self.manager = AsyncTokenManager(
            self.oauth,
            store,
            events=self.events,
            **manager_options,
        )
        self._connections: dict[str, ConnectionDependency] = {}
        for name, connection in named.items():
            manager = AsyncTokenManager(
                AsyncSalesforceOAuth(connection.app, http_client=http_client),
                store,
                events=self.events,
                **manager_options,
            )
            self._connections[name] = ConnectionDependency(
                name,
                manager,
                f"connection:{name}",
                grant=connection.resolved_grant,
                username=connection.username,
                transport=transport,
                identities=self.identities,
            )
        self.session = self._session_dependency(optional=False)
        self.optional_session = self._session_dependency(optional=True)
        #: ``dependencies=[sf.required]``: the route needs a Salesforce connection.
        self.required: DependsParam = Depends(self.session)
        self.router: APIRouter = get_sfoauth_router(self)

    def __repr__(self) -> str:
        return f"SFOAuth({self.app!r}, store={self.store!r})"

    # Configuration checks (SECURITY.md item 27) ---------------------------------------
    @staticmethod
    def _check(
        app: Any,
        store: Any,
        secret_key: Any,
        connections: Mapping[str, Connection],
        unauthenticated: str,
        default_next: str,
        flow_ttl: float,
        app_login_url: str | None = None,
    ) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []

        def add(id_: str, setting: str, message: str, hint: str) -> None:
            issues.append(ConfigIssue(id_, setting, message, hint))

        if not isinstance(app, ConnectedApp):
            add(
                "sfoauth_fastapi.E001",
                "app",
                "must be a ConnectedApp",
                "build it with ConnectedApp(...) or ConnectedApp.from_env()",
            )
        elif not app.redirect_uri:
            add(
                "sfoauth_fastapi.E010",
                "app.redirect_uri",
                "is required for the login flow",
                "set the absolute callback URL registered on the connected app",
            )
        raw = secret_key.reveal() if isinstance(secret_key, Secret) else secret_key
        if not isinstance(raw, str) or not raw:
            add(
                "sfoauth_fastapi.E002",
                "secret_key",
                "is missing",
                "generate one with secrets.token_urlsafe(48) and keep it secret",
            )
        elif len(raw) < MIN_SECRET_KEY_LENGTH:
            add(
                "sfoauth_fastapi.E002",
                "secret_key",
                f"is shorter than {MIN_SECRET_KEY_LENGTH} characters",
                "generate one with secrets.token_urlsafe(48)",
            )
        if not isinstance(store, AsyncTokenStore):
            add(
                "sfoauth_fastapi.E003",
                "store",
                "is not an AsyncTokenStore",
                "use SQLAlchemyTokenStore, AsyncRedisTokenStore or "
                "AsyncInMemoryTokenStore",
            )
        if unauthenticated not in ("auto", "401", "redirect"):
            add(
                "sfoauth_fastapi.E004",
                "unauthenticated",
                "must be auto, 401 or redirect",
                "pick how sf.session answers a user without a connection",
            )
        if safe_next_path(default_next, "") != default_next:
            add(
                "sfoauth_fastapi.E005",
                "default_next",
                "must be a same-origin path",
                "use a path such as '/'",
            )
        if not 30 <= flow_ttl <= 3600:
            add(
                "sfoauth_fastapi.E006",
                "flow_ttl",
                "must be between 30 and 3600 seconds",
                "the default is 600 (10 minutes)",
            )
        if app_login_url is not None and (
            safe_next_path(app_login_url, "") != app_login_url
            and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", app_login_url)
        ):
            add(
                "sfoauth_fastapi.E009",
                "app_login_url",
                "must be a path or an http(s) URL",
                "use your login page's path, such as '/login'",
            )
        for name, connection in connections.items():
            try:
                connection.validate()
            except ConfigurationError as exc:
                jwt = connection.resolved_grant == "jwt_bearer"
                where = (
                    "username" if exc.setting == "username" else f"app.{exc.setting}"
                )
                add(
                    "sfoauth_fastapi.E007" if jwt else "sfoauth_fastapi.E008",
                    f"connections[{name!r}].{where}",
                    exc.problem,
                    _CONNECTION_HINTS.get(exc.setting, "see the connection's grant"),
                )
        if isinstance(app, ConnectedApp) and not app.client_secret:
            add(
                "sfoauth_fastapi.W001",
                "app.client_secret",
                "is not set (public PKCE client)",
                "fine for External Client Apps without a secret; otherwise set it",
            )
        return issues

    # Keys -----------------------------------------------------------------------------
    def key_for_user(self, user_key: str) -> str:
        """The token-store key of an app user's connection."""
        return f"user:{user_key}"

    async def connect_with_token_exchange(
        self,
        user_key: str,
        subject_token: str,
        subject_token_type: str,
        *,
        token_handler: str | None = None,
        scopes: tuple[str, ...] | list[str] | None = None,
        request: Request | None = None,
    ) -> SalesforceSession:
        """Connect ``user_key`` (your user's id) to Salesforce by exchanging a token
        from another identity provider (reference 15.8): no Salesforce login page.

        Stored like a login through the router (``key_for_user(user_key)``): refreshed
        when Salesforce granted a refresh token, ``on_login`` called when ``request``
        is given. The subject token is sent once, never retried.

        Raises:
            InvalidGrantError: the handler refused the outside token (nothing stored).
            SalesforceUnavailableError: no answer or 5xx (get a fresh outside token).
            FlowError: an empty, oversized or unknown subject token.
            SFOAuthHTTPException: ``SFOAUTH_CONNECTION_CONFLICT`` (409) when the user
                is already connected to another Salesforce user (the new grant is
                revoked); ``SFOAUTH_NOT_AUTHENTICATED`` for an empty ``user_key``.
        """
        from .token_exchange import connect_with_token_exchange

        return await connect_with_token_exchange(
            self,
            user_key,
            subject_token,
            subject_token_type,
            token_handler=token_handler,
            scopes=scopes,
            request=request,
        )

    def session_for(self, key: str, token: Token) -> SalesforceSession:
        """A :class:`SalesforceSession` for a stored connection key and token."""
        return SalesforceSession(
            self.manager,
            key,
            token,
            transport=self.transport,
            identities=self.identities,
        )

    # Dependencies ---------------------------------------------------------------------
    def redirect_for(self, request: Request, code: ErrorCode) -> str | None:
        """Where a browser without a usable connection is sent (``None``: answer
        ``code`` instead), per :attr:`unauthenticated`: the login page with
        ``next``, or ``app_login_url`` when the app has not identified the user."""
        mode = self.unauthenticated
        if mode == "auto":
            wants_html = "text/html" in request.headers.get("accept", "")
            mode = "redirect" if wants_html and request.method == "GET" else "401"
        if mode != "redirect":
            return None
        if code is not ErrorCode.NOT_AUTHENTICATED:
            return login_redirect_path(self, request)
        if self.app_login_url:
            # Salesforce's login needs an app user first: the app's own login.
            return with_next(self.app_login_url, here_path(request, self))
        return None  # a redirect to the Salesforce login would be a dead end

    def _unconnected(
        self, request: Request, code: ErrorCode, optional: bool
    ) -> SalesforceSession | None:
        if optional:
            return None
        location = self.redirect_for(request, code)
        if location is not None:
            raise HTTPException(
                status_code=status.HTTP_303_SEE_OTHER,
                detail=code.value,
                headers={"Location": location, "Cache-Control": "no-store"},
            )
        raise http_error(
            code, headers={"WWW-Authenticate": 'Bearer realm="salesforce"'}
        )

    async def resolve_session(
        self, request: Request, user_key: str | None, *, optional: bool
    ) -> SalesforceSession | None:
        """The current user's session, or the unconnected answer (``None``, a 401 or
        a redirect to login, per configuration)."""
        if user_key is None:
            # No cookie yet with the default identity: simply not connected. With
            # the app's own auth: nobody is signed in to the app.
            anonymous = (
                ErrorCode.NOT_CONNECTED
                if self.identity is not None
                else ErrorCode.NOT_AUTHENTICATED
            )
            return self._unconnected(request, anonymous, optional)
        key = self.key_for_user(user_key)
        try:
            token = await self.manager.valid_token(key)
        except TokenNotFoundError:
            return self._unconnected(request, ErrorCode.NOT_CONNECTED, optional)
        except ReauthorizationRequired:
            return self._unconnected(
                request, ErrorCode.REAUTHORIZATION_REQUIRED, optional
            )
        except SFOAuthError as exc:
            raise http_error(exc) from None
        return SalesforceSession(
            self.manager,
            key,
            token,
            transport=self.transport,
            identities=self.identities,
        )

    def _session_dependency(self, *, optional: bool) -> Callable[..., Any]:
        # A closure, so the app's own user_key dependency runs through FastAPI's
        # injection (its sub-dependencies, caching and overrides) unchanged.
        resolve = self.resolve_session
        user_key: Any = self.user_key
        identity = self.identity
        if identity is not None:
            # The default identity is read inline: one dependency level less on the
            # hot path (FastAPI's per-dependency cost is most of this dependency's).
            if optional:

                async def optional_cookie_session(
                    request: Request,
                ) -> SalesforceSession | None:
                    key = identity.key_from(request)
                    return await resolve(request, key, optional=True)

                return optional_cookie_session

            async def cookie_session(request: Request) -> SalesforceSession:
                session = await resolve(
                    request, identity.key_from(request), optional=False
                )
                return cast("SalesforceSession", session)  # optional=False: never None

            return cookie_session
        if optional:

            async def optional_salesforce_session(
                request: Request, key: str | None = Depends(user_key)
            ) -> SalesforceSession | None:
                return await resolve(request, key, optional=True)

            return optional_salesforce_session

        async def salesforce_session(
            request: Request, key: str | None = Depends(user_key)
        ) -> SalesforceSession:
            session = await resolve(request, key, optional=False)
            return cast("SalesforceSession", session)  # optional=False: never None

        return salesforce_session

    def connection(self, name: str) -> ConnectionDependency:
        """The dependency of a named server-to-server connection.

        Raises:
            ConfigurationError: no connection of that name was configured.
        """
        try:
            return self._connections[name]
        except KeyError:
            raise ConfigurationError(
                "connections", f"has no connection named {name!r}"
            ) from None

    def add_exception_handlers(self, api: Any) -> None:
        """Answer failures escaping your routes with sfoauth's codes, never a 500.

        * core errors (``await session.client.get(...)`` when the grant was revoked,
          Salesforce down while refreshing...) and the ``HTTPException`` of sfoauth's
          dependencies: the mapped code, as an HTML page for browsers and
          ``{"detail": code}`` otherwise;
        * a network failure (``httpx.ConnectError``, a timeout...) of a call to
          Salesforce through ``session.client``: 503
          ``SFOAUTH_SALESFORCE_UNAVAILABLE`` with ``Retry-After``.

        It also documents, in the OpenAPI schema, the 401/303/503 answers of routes
        that depend on :attr:`session`.
        """

        async def core_error(request: Request, exc: Exception) -> Response:
            if not isinstance(exc, SFOAuthError):  # pragma: no cover
                raise exc
            code = code_for(exc)
            log_failure(exc, code)
            if code in (ErrorCode.NOT_CONNECTED, ErrorCode.REAUTHORIZATION_REQUIRED):
                # Refused while the route ran: a browser goes to reconnect, as the
                # dependency would have sent it.
                location = self.redirect_for(request, code)
                if location is not None:
                    return RedirectResponse(
                        location,
                        status_code=status.HTTP_303_SEE_OTHER,
                        headers={"Cache-Control": "no-store"},
                    )
            return error_response(self, request, code, hint=app_access_hint(exc))

        async def sfoauth_http(request: Request, exc: Exception) -> Response:
            if not isinstance(exc, SFOAuthHTTPException):  # pragma: no cover
                raise exc
            return error_response(self, request, exc.code, exc.headers)

        async def network(request: Request, exc: Exception) -> Response:
            if not is_salesforce_failure(exc):
                raise exc  # not a call to Salesforce: the app's usual handling
            logger.error(
                "Salesforce unreachable: %s on %s",
                type(exc).__name__,
                _host_of(exc),
            )
            return error_response(self, request, ErrorCode.SALESFORCE_UNAVAILABLE)

        api.add_exception_handler(SFOAuthError, core_error)
        api.add_exception_handler(SFOAuthHTTPException, sfoauth_http)
        api.add_exception_handler(httpx.TransportError, network)
        self.document(api)

    def session_responses(self) -> dict[int | str, dict[str, Any]]:
        """OpenAPI ``responses=`` of a route depending on :attr:`session`."""
        responses = error_responses(
            ErrorCode.NOT_AUTHENTICATED,
            ErrorCode.NOT_CONNECTED,
            ErrorCode.REAUTHORIZATION_REQUIRED,
            ErrorCode.SALESFORCE_UNAVAILABLE,
            ErrorCode.STORAGE_UNAVAILABLE,
        )
        if self.unauthenticated != "401":
            responses[303] = {
                "description": (
                    "A browser (HTML GET) without a usable connection: to the login "
                    "page with `next`"
                    + (
                        ", or to `app_login_url` when not signed in to the app"
                        if self.app_login_url
                        else ""
                    )
                    + "."
                )
            }
        return responses

    def document(self, api: Any) -> None:
        """Add :meth:`session_responses` to the OpenAPI operations of ``api``'s routes
        that depend on :attr:`session` (``Depends(sf.session)``, ``sf.required``).
        Called by :meth:`add_exception_handlers` and the lifespan; idempotent."""
        original = api.openapi
        if getattr(original, "_sfoauth_documents", None) is self:
            return
        targets = {self.session}

        def openapi() -> dict[str, Any]:
            if api.openapi_schema is None:
                extra = self.session_responses()
                for route in api.routes:
                    if isinstance(route, APIRoute) and _depends_on(
                        route.dependant, targets
                    ):
                        # A new dict: a responses mapping shared by several
                        # routes must not document the others.
                        route.responses = {**extra, **route.responses}
            schema: dict[str, Any] = original()
            return schema

        openapi._sfoauth_documents = self  # type: ignore[attr-defined]
        api.openapi = openapi

    # Lifespan -------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Start-up report and shutdown cleanup; ``FastAPI(lifespan=sf.lifespan)`` or
        ``async with sf.lifespan(app):`` inside your own lifespan.

        At start-up it creates the store's tables when the store was built with
        ``create_tables=True``, logs the configuration warnings and documents the
        routes depending on :attr:`session` in the OpenAPI schema."""
        for issue in self.warnings:
            logger.warning("%s", issue)
        await self._warn_removed_keys()
        _install_redaction()
        setup = getattr(self.store, "setup", None)
        if setup is not None:
            await setup()
        if app is not None and hasattr(app, "openapi") and hasattr(app, "routes"):
            self.document(app)
        try:
            yield
        finally:
            await self.aclose()

    async def _warn_removed_keys(self) -> None:
        # Issue 13 defect 9: stored tokens made with a key the cipher no longer has
        # cannot be decrypted; say so at start-up, not at the first user's request.
        scan = getattr(self.store, "unknown_key_ids", None)
        if scan is None:
            return
        try:
            missing = await scan()
        except SFOAuthError as exc:
            logger.warning("sfoauth could not check the stored tokens' keys: %s", exc)
            return
        for kid, count in sorted(missing.items()):
            logger.warning(
                "sfoauth: %d stored Salesforce connection(s) are encrypted with key id "
                "%r, which is not among the TokenCipher's keys: they cannot be "
                "decrypted. Put the removed key back after the new one and re-encrypt, "
                "or those users must log in again.",
                count,
                kid,
            )

    async def aclose(self) -> None:
        """Close the HTTP clients and transports sfoauth created."""
        for resource in reversed(self._owned):
            await resource.aclose()
        self._owned.clear()
