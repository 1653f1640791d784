"""The adapter: hooks where a project changes how sfoauth_django behaves.

Subclass :class:`DefaultSFOAuthAdapter`, override what you need, and point
``SFOAUTH["ADAPTER"]`` at your class. A hook is preferred over a boolean setting, and over
a signal whenever the hook's answer changes what happens next.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import httpx
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sfoauth_core import ConnectedApp
from sfoauth_core.exceptions import app_access_hint
from sfoauth_core.http.clients import build_http_client
from sfoauth_core.login import safe_next
from sfoauth_core.tokens import Identity, Token

from .conf import sfoauth_settings

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from .models import AbstractSalesforceConnection

__all__ = [
    "ERROR_MESSAGES",
    "ERROR_PAGES",
    "DefaultSFOAuthAdapter",
    "get_adapter",
    "is_safe_next",
]

logger = logging.getLogger("sfoauth.django")

USER_AGENT = "sfoauth-django"

#: What the error page says for each error code (no value from the request, ever).
ERROR_MESSAGES: dict[str, str] = {
    "invalid_state": "This Salesforce login link is invalid, expired or was already used. Please start again.",
    "access_denied": "Salesforce access was not granted.",
    "salesforce_error": "Salesforce refused the login. Please try again or contact your administrator.",
    "exchange_failed": "We could not complete the Salesforce login. Please try again.",
    "unavailable": "Salesforce is not answering right now. Please try again in a few minutes.",
    "different_account": "Your account is already connected to another Salesforce user in this org. Disconnect it first.",
    "already_linked": "This Salesforce user is already connected to another account.",
    "signup_closed": "No account is linked to this Salesforce user, and sign-up is closed.",
    "login_required": "Please sign in before connecting Salesforce.",
    "invalid_request": "The login request was not valid.",
    "not_connected": "There is no Salesforce connection to disconnect.",
    "configuration": "Salesforce refused this site's connection settings. Please try again later or contact the site's administrator.",
    "app_access": "Salesforce does not let your account use this site's app yet. Your Salesforce administrator can fix this:",
}

#: The error page's title and link for each error code: (title, link text, link target),
#: the target being ``login`` (start again), ``home`` (``LOGIN_REDIRECT_URL``),
#: ``disconnect`` (``DISCONNECT_REDIRECT_URL``) or ``app_login`` (``settings.LOGIN_URL``).
ERROR_PAGES: dict[str, tuple[str, str, str]] = {
    "invalid_state": ("Salesforce login expired", "Start again", "login"),
    "access_denied": ("Salesforce access not granted", "Try again", "login"),
    "salesforce_error": ("Salesforce login failed", "Try again", "login"),
    "exchange_failed": ("Salesforce login failed", "Try again", "login"),
    "unavailable": ("Salesforce is unavailable", "Back", "home"),
    "different_account": ("Salesforce account already connected", "Back", "home"),
    "already_linked": ("Salesforce account already connected", "Back", "home"),
    "signup_closed": ("No account for this Salesforce user", "Back", "home"),
    "login_required": ("Sign in first", "Sign in", "app_login"),
    "invalid_request": ("Invalid Salesforce login request", "Start again", "login"),
    "not_connected": ("Nothing to disconnect", "Back", "disconnect"),
    "configuration": ("Salesforce connection problem", "Back", "home"),
    "app_access": ("Salesforce refused access to this app", "Try again", "login"),
}


def is_safe_next(url: str | None) -> bool:
    """True only for a same-origin relative path (``/path?query``) (SECURITY.md item 4):
    the core's rule (:func:`sfoauth_core.login.safe_next`), the same in both adapters."""
    return safe_next(url) is not None


def _retry_url(request: HttpRequest) -> str | None:
    """This page again, for a ``GET`` whose URL carries no one-time secret (never the
    callback's ``code`` and ``state``)."""
    from .redaction import redact

    path = request.get_full_path()
    if request.method != "GET" or not is_safe_next(path) or redact(path) != path:
        return None
    return path


def _link(target: str) -> str:
    from django.conf import settings
    from django.shortcuts import resolve_url
    from django.urls import reverse

    if target == "login":
        return reverse("sfoauth:login")
    if target == "disconnect":
        return sfoauth_settings.DISCONNECT_REDIRECT_URL
    if target == "app_login":
        return str(resolve_url(settings.LOGIN_URL))
    return sfoauth_settings.LOGIN_REDIRECT_URL


class DefaultSFOAuthAdapter:
    """The default behaviour; every method is a hook.

    Args:
        request: the current request, when there is one.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        self.request = request

    def get_http_client(
        self, app: ConnectedApp, *, asynchronous: bool
    ) -> httpx.Client | httpx.AsyncClient:
        """The httpx client used to talk to Salesforce for ``app``.

        Runs once per app per process (token endpoint) and once per ``request.salesforce.client``.
        The default is the core's one client builder
        (:func:`sfoauth_core.http.clients.build_http_client`, as ``sfoauth_fastapi``'s):
        the app's timeout, TLS verification, no redirects, and the proxy the environment
        names (``HTTPS_PROXY``, ``NO_PROXY``) for the login URL. Override (or set
        ``HTTP_CLIENT_FACTORY``) for another proxy, client certificates or a test
        transport. Keep TLS verification on and redirects off.
        """
        factory = sfoauth_settings.HTTP_CLIENT_FACTORY
        if factory is not None:
            client: httpx.Client | httpx.AsyncClient = factory(
                app, asynchronous=asynchronous
            )
            return client
        if asynchronous:
            return build_http_client(app, asynchronous=True, user_agent=USER_AGENT)
        return build_http_client(app, asynchronous=False, user_agent=USER_AGENT)

    def get_login_redirect_url(self, request: HttpRequest, next_url: str | None) -> str:
        """Where the callback sends the user after a successful login.

        Runs after the token is stored. ``next_url`` was checked at login time; override to
        send new users to an onboarding page. Return a relative path.
        """
        if is_safe_next(next_url):
            return str(next_url)
        return sfoauth_settings.LOGIN_REDIRECT_URL

    def get_disconnect_redirect_url(
        self, request: HttpRequest, next_url: str | None
    ) -> str:
        """Where the disconnect view sends the user afterwards (a relative path)."""
        if is_safe_next(next_url):
            return str(next_url)
        return sfoauth_settings.DISCONNECT_REDIRECT_URL

    def get_scopes(self, request: HttpRequest) -> tuple[str, ...] | None:
        """Scopes to request for this login; ``None`` uses ``SFOAUTH["SCOPES"]``.

        Runs when a login starts. Per-request scopes never change the shared configuration.
        """
        return None

    def is_sign_in_allowed(self, request: HttpRequest) -> bool:
        """Whether an anonymous visitor may "Sign in with Salesforce".

        Default: when ``sfoauth_django.backends.SalesforceBackend`` is in
        ``AUTHENTICATION_BACKENDS``. Runs when an anonymous user starts a login.
        """
        from django.conf import settings

        return (
            "sfoauth_django.backends.SalesforceBackend"
            in settings.AUTHENTICATION_BACKENDS
        )

    def is_open_for_signup(
        self, request: HttpRequest | None, token: Token, identity: Identity | None
    ) -> bool:
        """Whether a Salesforce user with no linked account may get a new Django user.

        Runs during "Sign in with Salesforce" when no connection matches the org id and user
        id. Override to restrict sign-up to some orgs (``token.org_id``).
        """
        return True

    def get_user_for_identity(
        self, request: HttpRequest | None, token: Token
    ) -> AbstractBaseUser | None:
        """The Django user linked to the Salesforce user of ``token``, or ``None``.

        Links only by the 18-character org id and user id, compared case-sensitively; never
        by username or email, which change and can be claimed by someone else.
        """
        from .models import get_token_model

        if not token.org_id or not token.user_id:
            return None
        rows = (
            get_token_model()
            ._default_manager.filter(
                org_id=token.org_id, salesforce_user_id=token.user_id, name=""
            )
            .select_related("user")
        )
        for row in rows:
            if row.org_id == token.org_id and row.salesforce_user_id == token.user_id:
                user: AbstractBaseUser | None = row.user
                return user
        return None

    def new_user(
        self, request: HttpRequest | None, token: Token, identity: Identity | None
    ) -> AbstractBaseUser:
        """Create the Django user for a first "Sign in with Salesforce".

        The username is derived from the Salesforce user id (unique and stable); the email
        and names are copied from the identity but never used to link accounts.
        """
        model: Any = get_user_model()
        base = f"sf-{token.user_id or secrets.token_hex(6)}"
        username = base
        field = getattr(model, "USERNAME_FIELD", "username")
        while model._default_manager.filter(**{field: username}).exists():
            username = f"{base}-{secrets.token_hex(3)}"
        fields: dict[str, Any] = {field: username}
        if identity is not None and identity.email and hasattr(model, "email"):
            fields["email"] = identity.email
        user = model(**fields)
        user.set_unusable_password()
        user.save()
        return user  # type: ignore[no-any-return]

    def on_token_obtained(
        self,
        request: HttpRequest,
        connection: AbstractSalesforceConnection,
        token: Token,
    ) -> None:
        """Runs after the callback stored a new grant (before the redirect).

        Use it to fetch data from the org right away. The ``token_obtained`` signal also
        fires, for every way a token is obtained.
        """

    def on_error(
        self,
        request: HttpRequest,
        error: str,
        *,
        status: int = 400,
        exception: BaseException | None = None,
    ) -> HttpResponse:
        """The page shown when a login, callback or disconnect fails.

        Args:
            error: a code from :data:`ERROR_MESSAGES` (``invalid_state``, ``access_denied``...).
            status: the HTTP status.
            exception: the error behind it, if any (its message never contains a secret).

        Renders ``sfoauth/unavailable.html`` for ``unavailable`` (Salesforce unreachable
        or failing, status 503) and ``sfoauth/error.html`` for the rest (override the
        templates, or this hook). The context has ``error``, ``title``, ``message``,
        ``back_url``, ``back_text`` and, for a ``GET`` that Salesforce's outage
        interrupted, ``retry_url``.
        """
        # Refusals a Salesforce admin must fix for this user (app not installed in the
        # user's org, no access to the app, IP or login hours) get their own page with
        # the fix, whatever step they surfaced at (reference 15.4-15.7).
        hint = app_access_hint(exception) if exception is not None else None
        if hint is not None and error != "unavailable":
            error = "app_access"
        known = error if error in ERROR_MESSAGES else "exchange_failed"
        title, back_text, target = ERROR_PAGES[known]
        context = {
            "error": error,
            "title": title,
            "message": ERROR_MESSAGES[known],
            "hint": hint,
            "back_url": _link(target),
            "back_text": back_text,
            "retry_url": _retry_url(request) if error == "unavailable" else None,
        }
        template = (
            "sfoauth/unavailable.html"
            if error == "unavailable"
            else "sfoauth/error.html"
        )
        return render(request, template, context, status=status)


def get_adapter(request: HttpRequest | None = None) -> DefaultSFOAuthAdapter:
    """An instance of the adapter class named by ``SFOAUTH["ADAPTER"]``."""
    adapter: DefaultSFOAuthAdapter = sfoauth_settings.ADAPTER(request)
    return adapter
