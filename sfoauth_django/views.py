"""The login, callback and disconnect views: parse, call ``_flows``, respond.

Every response here carries ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``
(SECURITY.md item 6); failures render the adapter's error page (``sfoauth/error.html``).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from . import _flows
from ._reporting import protect_flow_view
from ._responses import REASONS, private, unavailable
from .adapter import get_adapter
from .conf import sfoauth_settings

__all__ = ["callback", "disconnect", "login"]

logger = logging.getLogger("sfoauth.django")

#: Shown after a disconnect that Salesforce did not confirm (unreachable, failing).
NOT_REVOKED = (
    "Salesforce could not be reached to revoke this site's access: it was removed here"
    " only. You can revoke it in your Salesforce settings (Connected Apps)."
)


def _failure(request: HttpRequest, failure: _flows.FlowFailedError) -> HttpResponse:
    if failure.error == "unavailable":
        return unavailable(request, failure.cause)
    if failure.cause is not None:
        logger.info(
            "salesforce login step failed: %s (%s)",
            failure.error,
            type(failure.cause).__name__,
        )
    response = get_adapter(request).on_error(
        request, failure.error, status=failure.status, exception=failure.cause
    )
    return private(response)


def _notices(request: HttpRequest) -> list[str]:
    """The interstitial's explanations: the ``reason`` of the redirect, then every
    pending Django message (consumed here, so none shows up later on another page)."""
    notices: list[str] = []
    reason = request.GET.get("reason")
    if reason in REASONS:
        notices.append(REASONS[reason])
    for message in messages.get_messages(request):
        text = str(message)
        if text not in notices:
            notices.append(text)
    return notices


@csrf_protect
@require_http_methods(["GET", "POST"])
@protect_flow_view
def login(request: HttpRequest) -> HttpResponse:
    """Start the web server flow (PKCE) on ``POST``; ``GET`` shows the interstitial.

    Accepts ``next`` (kept only if it is a same-origin path), ``prompt``, ``login_hint``
    and ``domain`` (a name from ``SFOAUTH["LOGIN_URLS"]``). A ``GET`` renders
    ``sfoauth/login.html`` ("Connect to Salesforce", a ``POST`` form with CSRF), which
    says why the user is here (``reason=reauth`` or ``disconnected``, and pending Django
    messages), so another site cannot start a login and a disconnect is never undone
    without a click. ``SFOAUTH["LOGIN_ON_GET"]`` starts the flow on a ``GET`` that has no
    reason to show.
    """
    data = request.POST if request.method == "POST" else request.GET
    try:
        options = _flows.read_login_options(data)
    except _flows.FlowFailedError as failure:
        return _failure(request, failure)
    if request.method == "GET" and (
        not sfoauth_settings.LOGIN_ON_GET or request.GET.get("reason") in REASONS
    ):
        context = {
            "options": options,
            "notices": _notices(request),
            "back_url": sfoauth_settings.LOGIN_REDIRECT_URL,
        }
        return private(render(request, "sfoauth/login.html", context))
    try:
        url = _flows.start_login(request, options)
    except _flows.FlowFailedError as failure:
        if failure.error == "login_required":
            return private(redirect_to_login(request.get_full_path()))
        return _failure(request, failure)
    return private(HttpResponseRedirect(url))


@require_http_methods(["GET"])
@protect_flow_view
def callback(request: HttpRequest) -> HttpResponse:
    """Finish the login: state, PKCE, code exchange, storage, then a redirect to ``next``.

    The redirect never carries ``code`` or ``state``.
    """
    try:
        _key, next_url = _flows.finish_login(request)
    except _flows.FlowFailedError as failure:
        return _failure(request, failure)
    target = get_adapter(request).get_login_redirect_url(request, next_url)
    return private(HttpResponseRedirect(target))


@csrf_protect
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    """Revoke the user's connection at Salesforce, then delete it (``POST`` + CSRF)."""
    if not request.user.is_authenticated:
        return private(redirect_to_login(request.get_full_path()))
    revoked = _flows.disconnect(request)
    if revoked is None:
        return _failure(request, _flows.FlowFailedError("not_connected", 404))
    request.session[_flows.DISCONNECTED] = True
    messages.info(request, REASONS["disconnected"], fail_silently=True)
    if not revoked:
        messages.warning(request, NOT_REVOKED, fail_silently=True)
    target = get_adapter(request).get_disconnect_redirect_url(
        request, request.POST.get("next")
    )
    return private(HttpResponseRedirect(target))
