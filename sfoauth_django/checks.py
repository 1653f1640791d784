"""System checks (``manage.py check``): every misconfiguration with an id and a hint.

Errors ``sfoauth_django.E001``-``E012`` stop ``runserver`` and ``migrate``; warnings
``sfoauth_django.W001``-``W004`` do not; ``sfoauth_django.E020`` (stored tokens under a
removed key) runs with ``--database``. One id per problem, namespaced per adapter. Messages name the setting, never its value
(SECURITY.md item 27).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured

from .conf import setting_label, sfoauth_settings

__all__ = ["check_settings"]

_KEY_HINT = (
    'Generate a key with: python -c "from sfoauth_core.storage import TokenCipher; '
    "print(TokenCipher.generate_key())\" and put it first in SFOAUTH['TOKEN_KEYS']."
)


def _problem(exc: Exception) -> str:
    return str(exc)


@register(Tags.security, Tags.compatibility)
def check_settings(
    *,
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Check ``SFOAUTH`` and the Django setup sfoauth_django relies on."""
    messages: list[CheckMessage] = []
    sfoauth_settings.reload()
    try:
        _ = sfoauth_settings.user_settings
    except ImproperlyConfigured as exc:
        return [
            Error(
                _problem(exc),
                hint="Use only the documented keys; see sfoauth_django.conf.DEFAULTS.",
                id="sfoauth_django.E001",
            )
        ]
    for key in ("ADAPTER", "HTTP_CLIENT_FACTORY"):
        try:
            getattr(sfoauth_settings, key)
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    _problem(exc),
                    hint=f"Set {setting_label(key)} to the dotted path of an importable object.",
                    id="sfoauth_django.E007",
                )
            )
    messages.extend(_check_app())
    messages.extend(_check_keys())
    messages.extend(_check_connections())
    messages.extend(_check_django())
    return messages


def _check_app() -> list[CheckMessage]:
    if not sfoauth_settings.CLIENT_ID:
        if sfoauth_settings.CONNECTIONS:
            return []  # server-to-server only: each connection brings its own client id
        return [
            Error(
                f"{setting_label('CLIENT_ID')} is not set.",
                hint="Copy the Consumer Key of your Connected App into SFOAUTH['CLIENT_ID'].",
                id="sfoauth_django.E002",
            )
        ]
    found: list[CheckMessage] = []
    if not sfoauth_settings.REDIRECT_URI:
        found.append(
            Error(
                f"{setting_label('REDIRECT_URI')} is not set.",
                hint="Set it to the absolute https URL of the sfoauth:callback view, as registered on the Connected App.",
                id="sfoauth_django.E003",
            )
        )
    try:
        sfoauth_settings.to_core_config()
    except ImproperlyConfigured as exc:
        found.append(
            Error(
                _problem(exc),
                hint="Use absolute https URLs on Salesforce hosts (login.salesforce.com, test.salesforce.com, My Domain); list custom domains in SFOAUTH['EXTRA_HOSTS']. For the local emulator (http://127.0.0.1...) set SFOAUTH['ALLOW_LOOPBACK'] = True, with DEBUG on.",
                id="sfoauth_django.E004",
            )
        )
    for name, url in sfoauth_settings.LOGIN_URLS.items():
        try:
            sfoauth_settings.to_core_config(login_url=url)
        except ImproperlyConfigured:
            found.append(
                Error(
                    f"{setting_label('LOGIN_URLS')} entry {name!r} is not a usable Salesforce login URL.",
                    hint="Each entry must be an https Salesforce login, sandbox or My Domain URL.",
                    id="sfoauth_django.E009",
                )
            )
    if sfoauth_settings.ALLOW_LOOPBACK and not settings.DEBUG:
        found.append(
            CheckWarning(
                f"{setting_label('ALLOW_LOOPBACK')} is on while DEBUG is off.",
                hint="Loopback http URLs are for the local emulator only; turn it off in production.",
                id="sfoauth_django.W001",
            )
        )
    return found


def _check_keys() -> list[CheckMessage]:
    if isinstance(sfoauth_settings.user_settings.get("TOKEN_KEYS"), str):
        return [
            Error(
                f"{setting_label('TOKEN_KEYS')} is a string; it must be a list of keys.",
                hint="Write SFOAUTH['TOKEN_KEYS'] = [os.environ['SFOAUTH_TOKEN_KEY']]: the "
                "first key encrypts, every key decrypts (put a new key first to rotate).",
                id="sfoauth_django.E011",
            )
        ]
    if not sfoauth_settings.TOKEN_KEYS:
        return [
            Error(
                f"{setting_label('TOKEN_KEYS')} is empty: tokens cannot be stored encrypted.",
                hint=_KEY_HINT,
                id="sfoauth_django.E005",
            )
        ]
    try:
        sfoauth_settings.cipher()
    except ImproperlyConfigured as exc:
        return [Error(_problem(exc), hint=_KEY_HINT, id="sfoauth_django.E005")]
    return []


def _check_connections() -> list[CheckMessage]:
    found: list[CheckMessage] = []
    for name in sfoauth_settings.CONNECTIONS:
        try:
            sfoauth_settings.connection(name)
        except ImproperlyConfigured as exc:
            found.append(
                Error(
                    _problem(exc),
                    hint="Named connections use FLOW 'jwt_bearer' (CLIENT_ID, PRIVATE_KEY "
                    "of at least 2048 bits, USERNAME, an AUDIENCE among the login hosts) or "
                    "'client_credentials' (CLIENT_ID, CLIENT_SECRET, a My Domain LOGIN_URL). "
                    "The username-password and user-agent flows are not offered.",
                    id="sfoauth_django.E008",
                )
            )
    return found


def _check_django() -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if "django.contrib.sessions" not in settings.INSTALLED_APPS:
        found.append(
            Error(
                "django.contrib.sessions is not installed.",
                hint="Add 'django.contrib.sessions' to INSTALLED_APPS: the login is bound to the browser session.",
                id="sfoauth_django.E006",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    if "django.contrib.sessions.middleware.SessionMiddleware" not in middleware:
        found.append(
            Error(
                "SessionMiddleware is not in MIDDLEWARE.",
                hint="Add 'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE.",
                id="sfoauth_django.E012",
            )
        )
    ours = "sfoauth_django.middleware.SalesforceMiddleware"
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    if ours in middleware and (
        auth not in middleware or middleware.index(ours) < middleware.index(auth)
    ):
        found.append(
            Error(
                "SalesforceMiddleware must come after AuthenticationMiddleware.",
                hint=f"Move '{ours}' below '{auth}' in MIDDLEWARE.",
                id="sfoauth_django.E010",
            )
        )
    if ours not in middleware:
        found.append(
            CheckWarning(
                "SalesforceMiddleware is not in MIDDLEWARE.",
                hint=f"Add '{ours}' below '{auth}': without it request.salesforce exists "
                "only in decorated views, and Salesforce failures inside other views "
                "are not turned into the re-connect and 503 pages.",
                id="sfoauth_django.W003",
            )
        )
    found.extend(_check_login_url())
    engine = getattr(settings, "SESSION_ENGINE", "")
    if engine.endswith("signed_cookies"):
        found.append(
            CheckWarning(
                "The signed-cookie session engine lets the browser read session data.",
                hint="sfoauth keeps tokens and PKCE verifiers in the database, but prefer a server-side SESSION_ENGINE.",
                id="sfoauth_django.W002",
            )
        )
    return found


def _check_login_url() -> list[CheckMessage]:
    """Anonymous visitors of decorated views go to ``settings.LOGIN_URL``: it must exist
    (a fresh ``startproject`` has no ``/accounts/login/``), unless they sign in with
    Salesforce instead."""
    from django.shortcuts import resolve_url
    from django.urls import NoReverseMatch, Resolver404, resolve

    from .adapter import get_adapter

    if not sfoauth_settings.CLIENT_ID:
        return []
    try:
        if get_adapter().is_sign_in_allowed(None):  # type: ignore[arg-type]
            return []
        url = str(resolve_url(settings.LOGIN_URL))
    except NoReverseMatch:
        url = str(settings.LOGIN_URL)
    except Exception:  # noqa: BLE001 - a broken adapter or URLconf has its own error
        return []
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return []  # another site's login page
    try:
        resolve(parts.path)
    except Resolver404:
        pass
    except Exception:  # noqa: BLE001 - a broken URLconf is reported by Django itself
        return []
    else:
        return []
    return [
        CheckWarning(
            f"settings.LOGIN_URL ({url!r}) matches no URL pattern: anonymous visitors "
            "of @salesforce_required views would get a 404 and lose where they were going.",
            hint="Add a login view, e.g. path('accounts/login/', "
            "LoginView.as_view(template_name='sfoauth/app_login.html'), name='login') "
            "(from django.contrib.auth.views import LoginView), set LOGIN_URL to your "
            "own login page, or enable Sign in with Salesforce (SalesforceBackend).",
            id="sfoauth_django.W004",
        )
    ]
