"""What the user sees when Salesforce gets in the way, decided in one place.

The decorators, the mixin, ``SalesforceMiddleware.process_exception`` and the login,
callback and disconnect views all turn the same failures into the same answers:

* the connection needs re-authorization → a redirect to the login interstitial
  (``sfoauth:login?next=<page>&reason=reauth``) that says why (and a Django message when
  the messages app is installed, rendered on that page);
* Salesforce unreachable or failing after retries → a ``503`` page
  (``sfoauth/unavailable.html``), never a traceback;
* Salesforce refusing the app's own configuration (wrong secret, unknown client id,
  redirect URI mismatch...) → an ``ERROR`` log on ``sfoauth.django`` naming the setting
  to fix, and a generic page.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from sfoauth_core.exceptions import (
    OAuthProtocolError,
    ReauthorizationRequired,
    TransportError,
)

from .conf import setting_label, sfoauth_settings

__all__ = [
    "REASONS",
    "configuration_setting",
    "handle_exception",
    "log_configuration_failure",
    "login_url",
    "private",
    "reconnect",
    "unavailable",
]

logger = logging.getLogger("sfoauth.django")

#: The interstitial's explanation for each ``reason`` query value (fixed texts only).
REASONS: dict[str, str] = {
    "reauth": "Your Salesforce connection needs to be renewed.",
    "disconnected": "You disconnected Salesforce.",
}

#: Seconds a 503 page suggests waiting (``Retry-After``).
RETRY_AFTER = 30

# Wire codes that mean "the app's configuration is wrong", with the settings to check.
_CONFIGURATION_ERRORS: dict[str, tuple[str, ...]] = {
    "invalid_client": ("CLIENT_SECRET", "CLIENT_ID"),
    "invalid_client_credentials": ("CLIENT_SECRET", "CLIENT_ID"),
    "invalid_client_id": ("CLIENT_ID", "LOGIN_URL"),
    "redirect_uri_mismatch": ("REDIRECT_URI",),
    "redirect_uri_missing": ("REDIRECT_URI",),
    "invalid_scope": ("SCOPES",),
    "unsupported_grant_type": ("CLIENT_ID",),
    "unsupported_response_type": ("CLIENT_ID",),
}


def private(response: HttpResponse) -> HttpResponse:
    """``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (SECURITY.md 6)."""
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def login_url(next_url: str | None = None, reason: str | None = None) -> str:
    """``sfoauth:login`` with ``next`` and a ``reason`` from :data:`REASONS`."""
    params = {}
    if next_url:
        params["next"] = next_url
    if reason in REASONS:
        params["reason"] = str(reason)
    url = reverse("sfoauth:login")
    return url + "?" + urlencode(params) if params else url


def reconnect(request: HttpRequest, reason: str | None = None) -> HttpResponse:
    """Send the user to the login interstitial, back to this page afterwards."""
    if reason in REASONS:
        messages.warning(request, REASONS[str(reason)], fail_silently=True)
    return HttpResponseRedirect(login_url(request.get_full_path(), reason))


def configuration_setting(exc: BaseException) -> tuple[str, ...] | None:
    """The settings to check when ``exc`` says the app's configuration is wrong."""
    if isinstance(exc, OAuthProtocolError):
        return _CONFIGURATION_ERRORS.get(exc.error)
    return None


def log_configuration_failure(exc: BaseException, step: str) -> bool:
    """Log at ``ERROR`` when Salesforce refused the app's configuration.

    The log names the wire code, Salesforce's description, the core's hint and the
    ``SFOAUTH`` setting to fix; never a value. Returns whether ``exc`` was one.
    """
    keys = configuration_setting(exc)
    if keys is None:
        return False
    if not isinstance(
        exc, OAuthProtocolError
    ):  # pragma: no cover - settings are named for these only
        return False
    labels = " / ".join(setting_label(key) for key in keys)
    logger.error(
        "Salesforce refused this site's app configuration during %s: %s%s%s. Check %s.",
        step,
        exc.error,
        f" ({exc.description})" if exc.description else "",
        f"; {exc.hint}" if exc.hint else "",
        labels,
    )
    return True


def _is_salesforce_request(request: HttpRequest, exc: httpx.TransportError) -> bool:
    """Whether an httpx failure was a call to Salesforce (not to another service)."""
    try:
        host = exc.request.url.host
    except RuntimeError:  # an httpx error without a request
        return False
    session: Any = request.__dict__.get("salesforce")  # no bool(): that may query
    instance = getattr(session, "known_instance_url", None)
    if instance and host == (urlsplit(instance).hostname or "").lower():
        return True
    try:
        return sfoauth_settings.to_core_config().trusts_host(host)
    except Exception:  # noqa: BLE001 - no usable user app: only named connections
        return False


def unavailable(
    request: HttpRequest, exception: BaseException | None = None
) -> HttpResponse:
    """The ``503`` page: "Salesforce is unavailable", a back link, ``Retry-After``."""
    from .adapter import get_adapter

    logger.warning(
        "Salesforce is unavailable for %s %s: %s",
        request.method,
        request.path,
        type(exception).__name__ if exception is not None else "no answer",
    )
    response = get_adapter(request).on_error(
        request, "unavailable", status=503, exception=exception
    )
    response["Retry-After"] = str(RETRY_AFTER)
    return private(response)


def handle_exception(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """The answer for an exception raised while a view used Salesforce, or ``None``
    (not ours: let Django handle it)."""
    from .adapter import get_adapter

    if isinstance(exc, ReauthorizationRequired):
        return reconnect(request, "reauth")
    if isinstance(exc, TransportError):
        return unavailable(request, exc)
    if isinstance(exc, httpx.TransportError) and _is_salesforce_request(request, exc):
        return unavailable(request, exc)
    if log_configuration_failure(exc, f"{request.method} {request.path}"):
        response = get_adapter(request).on_error(
            request, "configuration", status=502, exception=exc
        )
        return private(response)
    return None
