"""The HTML sfoauth answers browsers with: the login interstitial and error pages.

Clients that do not ask for ``text/html`` get the JSON body ``{"detail": "<code>"}``
instead (:func:`error_response` chooses). Every value put on a page is escaped; no
page ever shows a token, a code, a state or an exception message.

* :func:`interstitial` — ``GET /salesforce/login``: "Connect to Salesforce", the reason
  when there is one, and one POST form whose button ("Continue to Salesforce") starts
  the flow. Starting a login is always the user's click (django-allauth's
  ``SOCIALACCOUNT_LOGIN_ON_GET = False`` pattern), so a disconnect is never undone by
  a page view and a third-party page cannot start a login by linking here.
* :func:`error_page` — a title, a sentence and the links that fit the error (retry,
  reconnect, back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from .errors import NO_STORE_HEADERS, RETRY_AFTER_SECONDS, ErrorCode, status_for

if TYPE_CHECKING:
    from .app import SFOAuth

__all__ = [
    "CONTINUE_BUTTON",
    "DISCONNECTED_REASON",
    "INTERSTITIAL_TITLE",
    "RENEW_REASON",
    "UNAVAILABLE_TITLE",
    "error_page",
    "error_response",
    "interstitial",
    "login_base",
    "wants_html",
]

#: The interstitial's ``<title>`` and ``<h1>``.
INTERSTITIAL_TITLE = "Connect to Salesforce"
#: The text of the button that starts the login.
CONTINUE_BUTTON = "Continue to Salesforce"
#: Shown when the stored connection was refused by Salesforce (needs a new login).
RENEW_REASON = "Your Salesforce connection needs to be renewed."
#: Shown after the user disconnected Salesforce in this browser.
DISCONNECTED_REASON = "You disconnected Salesforce."
#: The ``<h1>`` of the 503 page.
UNAVAILABLE_TITLE = "Salesforce is unavailable"

#: Headers of the HTML pages: never cached, never framed (a framed "Continue" button
#: could be clicked by a hidden overlay), no referrer.
PAGE_HEADERS: Mapping[str, str] = {
    **NO_STORE_HEADERS,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
    "padding:0 1rem;color:#1b1b1b}button{font-size:1rem;padding:.5rem 1.2rem}"
    ".reason{background:#fff4e5;border-left:4px solid #f0a020;padding:.6rem .8rem}"
    "nav{margin-top:2rem}nav a{margin-right:1.5rem}"
)


def wants_html(request: Request) -> bool:
    """True when the client asks for HTML (a browser navigating)."""
    return "text/html" in request.headers.get("accept", "")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def interstitial(
    action: str,
    fields: Mapping[str, str | None],
    *,
    reason: str | None = None,
    back: str = "/",
) -> str:
    """The "Connect to Salesforce" page: ``reason`` (if any), then a POST form to
    ``action`` carrying ``fields`` as hidden inputs, and a link ``back``."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
        if value is not None
    )
    why = (
        f'<p class="reason" id="sfoauth-reason">{escape(reason)}</p>' if reason else ""
    )
    return _page(
        INTERSTITIAL_TITLE,
        f"{why}<p>This site will send you to Salesforce to sign in and allow access "
        "to your Salesforce data. You come back here afterwards.</p>"
        f'<form id="sfoauth-login-form" method="post" action="{escape(action)}">'
        f'{hidden}<button id="sfoauth-continue" type="submit">{CONTINUE_BUTTON}'
        "</button></form>"
        f'<nav><a id="sfoauth-back" href="{escape(back)}">Not now, go back</a></nav>',
    )


@dataclass(frozen=True, slots=True)
class _Copy:
    title: str
    text: str
    link: str  # "login", "app-login", "retry" or "back"
    link_text: str


_COPY: dict[ErrorCode, _Copy] = {
    ErrorCode.NOT_AUTHENTICATED: _Copy(
        "Please sign in", "Sign in to this site first.", "app-login", "Sign in"
    ),
    ErrorCode.NOT_CONNECTED: _Copy(
        "Salesforce is not connected",
        "This page needs your Salesforce connection.",
        "login",
        "Connect to Salesforce",
    ),
    ErrorCode.REAUTHORIZATION_REQUIRED: _Copy(
        "Reconnect Salesforce", RENEW_REASON, "login", "Reconnect to Salesforce"
    ),
    ErrorCode.INVALID_STATE: _Copy(
        "This login has expired",
        "The Salesforce login you came back from expired, was already used or was "
        "started in another browser.",
        "login",
        "Start the login again",
    ),
    ErrorCode.INVALID_CALLBACK: _Copy(
        "The Salesforce login did not complete",
        "Salesforce sent back an answer this site cannot use.",
        "login",
        "Start the login again",
    ),
    ErrorCode.INVALID_REQUEST: _Copy(
        "This login request is not valid",
        "One of the login options is not accepted.",
        "back",
        "Go back",
    ),
    ErrorCode.ACCESS_DENIED: _Copy(
        "Access was not allowed",
        "Salesforce access was declined, so nothing was connected.",
        "login",
        "Try again",
    ),
    ErrorCode.APP_ACCESS_DENIED: _Copy(
        "Salesforce refused access to this app",
        "Salesforce does not let your account use this site's app yet: the app may "
        "not be installed in your org, your profile may not have access to it, or "
        "your network address or login hours may be refused. Your Salesforce "
        "administrator can fix this.",
        "login",
        "Try again",
    ),
    ErrorCode.AUTHORIZATION_FAILED: _Copy(
        "Salesforce refused the login",
        "Salesforce did not accept this login.",
        "login",
        "Try again",
    ),
    ErrorCode.CONNECTION_CONFLICT: _Copy(
        "Another Salesforce account is connected",
        "You signed in to a different Salesforce user or org than the one already "
        "connected. Disconnect it first if you want to switch.",
        "back",
        "Go back",
    ),
    ErrorCode.CROSS_SITE_REQUEST: _Copy(
        "Request refused",
        "This request came from another site, so it was not carried out.",
        "back",
        "Go back",
    ),
    ErrorCode.SALESFORCE_ERROR: _Copy(
        "Salesforce answered unexpectedly",
        "Salesforce sent an answer this site cannot use. Try again later.",
        "back",
        "Go back",
    ),
    ErrorCode.SALESFORCE_UNAVAILABLE: _Copy(
        UNAVAILABLE_TITLE,
        "Salesforce could not be reached or kept failing. Nothing was lost; try "
        "again in a moment.",
        "retry",
        "Try again",
    ),
    ErrorCode.APP_MISCONFIGURED: _Copy(
        "Salesforce connection misconfigured",
        "Salesforce refused this site's own settings. The site's administrator "
        "needs to fix them (the cause is in the server log).",
        "back",
        "Go back",
    ),
    ErrorCode.STORAGE_UNAVAILABLE: _Copy(
        "Temporarily unavailable",
        "This site could not read its Salesforce connections. Try again in a moment.",
        "retry",
        "Try again",
    ),
}


def login_base(sf: SFOAuth, request: Request) -> str:
    """The path of the login route on the request's app (or ``sf.login_path``)."""
    try:
        return str(request.app.url_path_for("sfoauth:login"))
    except Exception:  # noqa: BLE001 - router not mounted on this app
        return sf.login_path


def error_page(
    sf: SFOAuth,
    request: Request,
    code: ErrorCode,
    next_path: str | None = None,
    hint: str | None = None,
) -> str:
    """The HTML page of ``code``: its title, one sentence, fitting links.

    ``next_path``: where a new login should return to, for errors of sfoauth's own
    routes (a callback's URL is single use and carries a code: never linked to).
    Otherwise the links return to the request's own page.
    """
    from .router import here_path, with_next

    copy = _COPY[code]
    home = sf.default_next
    back_to = next_path if next_path is not None else here_path(request, sf)
    link = copy.link
    if link == "retry" and (next_path is not None or request.method != "GET"):
        link = "login" if next_path is not None else "back"
    if link == "login":
        target = with_next(login_base(sf, request), back_to)
    elif link == "app-login" and sf.app_login_url:
        target = with_next(sf.app_login_url, back_to)
    elif link == "retry":
        target = back_to
    else:
        target = home
    links = (
        f'<a id="sfoauth-action" href="{escape(target)}">{escape(copy.link_text)}</a>'
    )
    if target != home:
        links += f'<a id="sfoauth-back" href="{escape(home)}">Back to the home page</a>'
    fix = f'<p id="sfoauth-hint">{escape(hint)}</p>' if hint else ""
    return _page(
        copy.title,
        f'<p id="sfoauth-error" data-code="{code.value}">{escape(copy.text)}</p>'
        f"{fix}<nav>{links}</nav>",
    )


def error_response(
    sf: SFOAuth,
    request: Request,
    code: ErrorCode,
    headers: Mapping[str, str] | None = None,
    *,
    next_path: str | None = None,
    hint: str | None = None,
) -> Response:
    """``code`` as an HTML page for browsers, ``{"detail": code}`` otherwise
    (``next_path``: see :func:`error_page`; ``hint``: what the user's Salesforce admin
    must change, for ``SFOAUTH_APP_ACCESS_DENIED``, shown on the page and sent as
    ``"hint"``)."""
    merged = dict(NO_STORE_HEADERS)
    if code is ErrorCode.SALESFORCE_UNAVAILABLE:
        merged["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if headers:
        merged.update(headers)
    if wants_html(request):
        merged.update(PAGE_HEADERS)
        return HTMLResponse(
            error_page(sf, request, code, next_path, hint),
            status_code=status_for(code),
            headers=merged,
        )
    body = {"detail": code.value}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status_for(code), headers=merged)
