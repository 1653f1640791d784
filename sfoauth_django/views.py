"""The login, callback and disconnect views: parse, call ``_flows``, respond.

Every response here carries ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``
(SECURITY.md item 6); failures render the adapter's error page (``sfoauth/error.html``).
"""

from __future__ import annotations

import logging

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from . import _flows
from ._reporting import protect_flow_view
from .adapter import get_adapter
from .conf import sfoauth_settings

__all__ = ["callback", "disconnect", "login"]

logger = logging.getLogger("sfoauth.django")


def _private(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _failure(request: HttpRequest, failure: _flows.FlowFailure) -> HttpResponse:
    if failure.cause is not None:
        logger.info(
            "salesforce login step failed: %s (%s)",
            failure.error,
            type(failure.cause).__name__,
        )
    response = get_adapter(request).on_error(
        request, failure.error, status=failure.status, exception=failure.cause
    )
    return _private(response)


@csrf_protect
@require_http_methods(["GET", "POST"])
@protect_flow_view
def login(request: HttpRequest) -> HttpResponse:
    """Start the web server flow (PKCE): ``POST`` (or ``GET`` with ``LOGIN_ON_GET``).

    Accepts ``next`` (kept only if it is a same-origin path), ``prompt``, ``login_hint``
    and ``domain`` (a name from ``SFOAUTH["LOGIN_URLS"]``). A plain ``GET`` shows a
    confirmation form (``sfoauth/login.html``), so another site cannot start a login.
    """
    data = request.POST if request.method == "POST" else request.GET
    try:
        options = _flows.read_login_options(data)
    except _flows.FlowFailure as failure:
        return _failure(request, failure)
    if request.method == "GET" and not sfoauth_settings.LOGIN_ON_GET:
        return _private(render(request, "sfoauth/login.html", {"options": options}))
    try:
        url = _flows.start_login(request, options)
    except _flows.FlowFailure as failure:
        if failure.error == "login_required":
            return _private(redirect_to_login(request.get_full_path()))
        return _failure(request, failure)
    return _private(HttpResponseRedirect(url))


@require_http_methods(["GET"])
@protect_flow_view
def callback(request: HttpRequest) -> HttpResponse:
    """Finish the login: state, PKCE, code exchange, storage, then a redirect to ``next``.

    The redirect never carries ``code`` or ``state``.
    """
    try:
        _key, next_url = _flows.finish_login(request)
    except _flows.FlowFailure as failure:
        return _failure(request, failure)
    target = get_adapter(request).get_login_redirect_url(request, next_url)
    return _private(HttpResponseRedirect(target))


@csrf_protect
@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    """Revoke the user's connection at Salesforce, then delete it (``POST`` + CSRF)."""
    if not request.user.is_authenticated:
        return _private(redirect_to_login(request.get_full_path()))
    if not _flows.disconnect(request):
        return _failure(request, _flows.FlowFailure("not_connected", 404))
    target = get_adapter(request).get_disconnect_redirect_url(
        request, request.POST.get("next")
    )
    return _private(HttpResponseRedirect(target))
