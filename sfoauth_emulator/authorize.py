"""The authorize endpoint with its login and consent pages, and the device verification
page.

Reference 3 and section 13 items 11-13: the client id and then the redirect URI are
checked first, and failures are *rendered* (a page containing
``error=…&error_description=…``), never redirected. Every other error is redirected, in
the query for ``response_type=code`` and in the fragment for ``token``, ``token
id_token`` and ``hybrid_token``, always echoing ``state``.

A person can click through the HTML pages in a browser (the forms post back to
``/services/oauth2/authorize`` with the original request in hidden fields; a session
cookie skips the login next time). Tests can script the user instead:
``emu.auto_approve = "jane@acme.com"`` approves as that user without any page,
``emu.auto_consent = "deny"`` answers ``access_denied``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Literal
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from .access import check_app_access
from .constants import AUTHORIZE_PATH
from .crypto import new_auth_code
from .state import AuthCodeRecord, EmulatedApp, EmulatedUser, EmulatorState
from .tokens import (
    Grant,
    check_user,
    issue_token_response,
    resolve_scopes,
    wants_refresh,
)
from .vhosts import HostContext, emulator_state, host_context
from .wire import OAuthError, read_params

__all__ = [
    "SESSION_COOKIE",
    "AuthorizeOutcome",
    "PageError",
    "authorize_endpoint",
    "decide_authorization",
    "device_verification_endpoint",
    "set_device_status",
]

SESSION_COOKIE = "sfemu_sid"
_LOGIN_FAILED = (
    "Please check your username and password. If you still can't log in, contact your "
    "Salesforce administrator."
)
_RESPONSE_TYPES = {
    "code": "code",
    "token": "token",
    "id_token token": "token id_token",
    "hybrid_token": "hybrid_token",
}
_HIDDEN_SKIP = {"_action", "username", "password"}
# The installed-app "out-of-band" redirect (no callback, the code is shown to the user):
# Salesforce refuses it with invalid_request (reference 2.7).
_OUT_OF_BAND = frozenset(
    {"oob", "urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto"}
)


class PageError(Exception):
    """An authorize error shown on a Salesforce page instead of being redirected."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass
class AuthorizeOutcome:
    """What the authorize endpoint answers: a redirect, the login page or the consent
    page."""

    kind: Literal["redirect", "login", "consent"]
    location: str = ""
    app: EmulatedApp | None = None
    user: EmulatedUser | None = None
    login_error: str | None = None
    new_session_user: str | None = None
    scopes: tuple[str, ...] = ()


def _append(uri: str, values: Mapping[str, str], fragment: bool) -> str:
    encoded = urlencode(values, quote_via=quote)
    if fragment:
        return f"{uri}#{encoded}"
    return f"{uri}{'&' if '?' in uri else '?'}{encoded}"


def _safe_for_refresh(redirect_uri: str) -> bool:
    scheme = redirect_uri.split(":", 1)[0].lower()
    return scheme not in ("http", "https") or redirect_uri.rstrip("/").endswith(
        "/services/oauth2/success"
    )


def decide_authorization(
    state: EmulatorState,
    ctx: HostContext,
    params: Mapping[str, str],
    *,
    action: str | None = None,
    username: str | None = None,
    password: str | None = None,
    session_user: str | None = None,
    forced_user: str | None = None,
    forced_consent: bool = True,
) -> AuthorizeOutcome:
    """Decide the answer to one authorize request (call with ``state.lock`` held).

    Args:
        state: emulator state.
        ctx: the host the request came to.
        params: the authorize parameters.
        action: ``"login"``, ``"allow"`` or ``"deny"`` for form posts.
        username: login form username.
        password: login form password.
        session_user: username of the browser's login session.
        forced_user: act as this user with no page at all (the ``emu.authorize``
            helper).
        forced_consent: with ``forced_user``: allow (``True``) or deny (``False``).

    Raises:
        PageError: client id or redirect URI problems (rendered, not redirected).
    """
    app = state.app_by_client_id(params.get("client_id"))
    if app is None:
        raise PageError("invalid_client_id", "client identifier invalid")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise PageError("redirect_uri_missing", "redirect_uri not provided")
    if redirect_uri in _OUT_OF_BAND:
        raise PageError("invalid_request", "out-of-band not supported")
    if redirect_uri not in app.callback_urls:
        raise PageError(
            "redirect_uri_mismatch", "redirect_uri must match configuration"
        )
    raw_type = " ".join(sorted((params.get("response_type") or "").split()))
    response_type = _RESPONSE_TYPES.get(raw_type)
    state_param = params.get("state")
    fragment = response_type not in (None, "code")

    def fail(error: str, description: str) -> AuthorizeOutcome:
        values = {"error": error, "error_description": description}
        if state_param is not None:
            values["state"] = state_param
        return AuthorizeOutcome("redirect", _append(redirect_uri, values, fragment))

    if response_type is None:
        return fail("unsupported_response_type", "response type not supported")
    try:
        scopes = resolve_scopes(app, params.get("scope"))
    except OAuthError as exc:
        return fail(exc.error, exc.description)
    challenge = params.get("code_challenge") or None
    if response_type == "code" and app.is_pkce_required and not challenge:
        return fail("invalid_request", "missing required code challenge")
    method = params.get("code_challenge_method")
    if challenge and method not in (None, "", "S256"):
        return fail("invalid_request", "invalid code challenge method")
    prompts = set((params.get("prompt") or "").split())
    immediate = (params.get("immediate") or "").lower() == "true"

    user: EmulatedUser | None = None
    new_session: str | None = None
    scripted = False
    if forced_user is not None:
        user = state.user(forced_user)
        if user is None:
            raise ValueError(f"unknown user {forced_user!r}")
        scripted = True
    elif action == "login":
        candidate = state.user(username)
        if (
            candidate is None
            or not hmac.compare_digest(
                (password or "").encode(), candidate.password.encode()
            )
            or not ctx.accepts_org(state.org_of(candidate))
        ):
            return AuthorizeOutcome("login", app=app, login_error=_LOGIN_FAILED)
        user = candidate
        new_session = candidate.username
    elif action in ("allow", "deny"):
        user = state.user(session_user)
        if user is None:
            return AuthorizeOutcome("login", app=app)
    else:
        if session_user and "login" not in prompts:
            user = state.user(session_user)
            if user is not None and not ctx.accepts_org(state.org_of(user)):
                user = None
        if user is None and state.auto_approve:
            user = state.user(state.auto_approve)
            scripted = user is not None
        if user is None:
            if immediate:
                return fail("immediate_unsuccessful", "immediate unsuccessful")
            return AuthorizeOutcome("login", app=app)

    org = state.org_of(user)
    try:
        check_user(org, user)
    except OAuthError as exc:
        return fail(exc.error, exc.description)
    if app.app_access_stage == "authorize":
        try:
            check_app_access(app, user, org)
        except OAuthError as exc:
            return fail(exc.error, exc.description)
    if response_type != "code" and org.user_agent_blocked:
        return fail(*org.user_agent_blocked_error)
    if action == "deny" or (forced_user is not None and not forced_consent):
        return fail(*org.access_denied_error)
    approved = (
        user.username in app.admin_approved_users
        or (user.username, app.client_id) in state.approvals
    )
    if action == "allow" or forced_user is not None:
        state.approvals.add((user.username, app.client_id))
    elif scripted:
        if state.auto_consent == "deny":
            return fail(*org.access_denied_error)
        state.approvals.add((user.username, app.client_id))
    elif not approved or "consent" in prompts:
        if immediate:
            return fail("immediate_unsuccessful", "immediate unsuccessful")
        return AuthorizeOutcome(
            "consent", app=app, user=user, new_session_user=new_session, scopes=scopes
        )

    issuer = ctx.base_url
    instance_url = ctx.instance_url(org)
    community: dict[str, str] = {}
    if ctx.kind == "site" and ctx.site_prefix:
        community = {
            "sfdc_community_url": ctx.base_url,
            "sfdc_community_id": org.site_id,
        }
    if response_type == "code":
        code = new_auth_code()
        state.codes[code] = AuthCodeRecord(
            value=code,
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            username=user.username,
            scopes=scopes,
            challenge=challenge,
            nonce=params.get("nonce") or None,
            created=state.now(),
            issuer=issuer,
            instance_url=instance_url,
        )
        values = {"code": code, **community}
        if state_param is not None:
            values["state"] = state_param
        location = _append(redirect_uri, values, fragment=False)
        return AuthorizeOutcome("redirect", location, new_session_user=new_session)
    policy = app.user_agent_refresh
    refresh = wants_refresh(scopes) and (
        policy == "always" or (policy == "safe" and _safe_for_refresh(redirect_uri))
    )
    grant = Grant(
        app,
        user,
        org,
        scopes,
        issuer,
        instance_url,
        response_type,
        nonce=params.get("nonce") or None,
    )
    body = issue_token_response(
        state,
        grant,
        refresh=refresh,
        include_id_token=response_type == "token id_token",
        hybrid=response_type == "hybrid_token",
        extra=community,
    )
    if state_param is not None:
        body["state"] = state_param
    location = _append(redirect_uri, body, fragment=True)
    return AuthorizeOutcome("redirect", location, new_session_user=new_session)


# ---------------------------------------------------------------------- pages
_STYLE = (
    "body{font-family:sans-serif;background:#f3f3f3;margin:0}"
    "main{max-width:380px;margin:60px auto;background:#fff;padding:24px;"
    "border-radius:6px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.2)}label{display:block;margin-top:12px}"
    "input[type=text],input[type=password],input[type=email]{width:100%;padding:8px;"
    "box-sizing:border-box}button{margin-top:16px;padding:8px 16px}"
    ".error{color:#c23934}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    headers = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}
    return HTMLResponse(html, status_code=status, headers=headers)


def _hidden(params: Mapping[str, str]) -> str:
    return "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>"
        for k, v in params.items()
        if k not in _HIDDEN_SKIP
    )


def error_page(error: str, description: str) -> HTMLResponse:
    """Salesforce's rendered OAuth error page (no redirect)."""
    text = urlencode(
        {"error": error, "error_description": description}, quote_via=quote
    )
    body = (
        "<h1>OAuth Error</h1><p>We can't authorize you because of an OAuth error. "
        "For more information, contact your Salesforce administrator.</p>"
        # Not HTML-escaped: clients search the page for this exact text, and
        # it only holds our own fixed strings, percent-encoded.
        f"<p class='error'>{text}</p>"
    )
    return _page("OAuth Error", body, status=400)


def login_page(
    ctx: HostContext, params: Mapping[str, str], error: str | None = None
) -> HTMLResponse:
    """The login form; ``login_hint`` pre-fills the username."""
    hint = params.get("login_hint") or ""
    message = f"<p class='error'>{escape(error)}</p>" if error else ""
    body = (
        f"<h1>Login</h1>{message}"
        f"<form method='post' action='{escape(ctx.site_prefix + AUTHORIZE_PATH)}'>"
        f"{_hidden(params)}"
        f"<label>Username<input type='email' name='username' value='{escape(hint)}' "
        "autocomplete='username'></label>"
        "<label>Password<input type='password' name='password' "
        "autocomplete='current-password'></label>"
        "<button type='submit' name='_action' value='login'>Log In</button></form>"
    )
    return _page("Login | Salesforce", body)


def consent_page(
    ctx: HostContext,
    params: Mapping[str, str],
    app: EmulatedApp,
    user: EmulatedUser,
    scopes: tuple[str, ...],
) -> HTMLResponse:
    """The Allow/Deny page."""
    items = "".join(f"<li>{escape(s)}</li>" for s in scopes)
    body = (
        f"<h1>Allow Access?</h1><p><b>{escape(app.name)}</b> is asking to access "
        f"your Salesforce data as <b>{escape(user.username)}</b>:</p><ul>{items}</ul>"
        f"<form method='post' action='{escape(ctx.site_prefix + AUTHORIZE_PATH)}'>"
        f"{_hidden(params)}"
        "<button type='submit' name='_action' value='deny'>Deny</button> "
        "<button type='submit' name='_action' value='allow'>Allow</button></form>"
    )
    return _page("Allow Access? | Salesforce", body)


def _session_user(state: EmulatorState, request: Request) -> str | None:
    sid = request.cookies.get(SESSION_COOKIE)
    return state.sessions.get(sid) if sid else None


def _start_session(state: EmulatorState, response: Response, username: str) -> None:
    sid = secrets.token_urlsafe(24)
    state.sessions[sid] = username
    response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True, samesite="lax")


async def authorize_endpoint(request: Request) -> Response:
    """``/services/oauth2/authorize`` (GET from the browser; POST from our own
    forms)."""
    state = emulator_state(request)
    ctx = host_context(request)
    params = dict(request.query_params)
    form: dict[str, str] = {}
    if request.method == "POST":
        form = await read_params(request)
        params.update({k: v for k, v in form.items() if k not in _HIDDEN_SKIP})
    action = form.get("_action")
    with state.lock:
        try:
            outcome = decide_authorization(
                state,
                ctx,
                params,
                action=action,
                username=form.get("username"),
                password=form.get("password"),
                session_user=_session_user(state, request),
            )
        except PageError as exc:
            return error_page(exc.error, exc.description)
        response: Response
        if outcome.kind == "redirect":
            response = RedirectResponse(outcome.location, status_code=302)
        elif outcome.kind == "login":
            response = login_page(ctx, params, outcome.login_error)
        else:
            if outcome.app is None or outcome.user is None:  # pragma: no cover
                raise RuntimeError("a consent page needs the app and the user")
            response = consent_page(
                ctx, params, outcome.app, outcome.user, outcome.scopes
            )
        if outcome.new_session_user:
            _start_session(state, response, outcome.new_session_user)
    return response


# ---------------------------------------------------------------------- device
# verification
def set_device_status(
    state: EmulatorState, user_code: str, username: str | None, approve: bool
) -> None:
    """Approve (as ``username``) or deny a pending device code (lock held).

    Raises:
        KeyError: no pending, unexpired device authorization has this user code.
    """
    wanted = user_code.strip().upper().replace("-", "")
    for record in state.devices.values():
        if record.user_code == wanted and record.status == "pending":
            app = state.app_by_client_id(record.client_id)
            lifetime = app.device_code_lifetime if app else None
            if lifetime is not None and state.now() > record.created + lifetime:
                break
            if approve:
                user = state.user(username)
                if user is None:
                    raise KeyError(f"unknown user {username!r}")
                record.username = user.username
                record.status = "approved"
            else:
                record.status = "denied"
            return
    raise KeyError(f"no pending device authorization for user code {user_code!r}")


def _device_form(
    ctx: HostContext, user_code: str, logged_in: bool, error: str = ""
) -> str:
    message = f"<p class='error'>{escape(error)}</p>" if error else ""
    credentials = (
        ""
        if logged_in
        else "<label>Username<input type='email' name='username'></label>"
        "<label>Password<input type='password' name='password'></label>"
    )
    return (
        f"<h1>Connect Your Device</h1>{message}"
        f"<form method='post' action='{escape(ctx.site_prefix)}/setup/connect'>"
        f"<label>Code<input type='text' name='user_code' value='{escape(user_code)}'>"
        f"</label>{credentials}"
        "<button type='submit' name='_action' value='deny'>Deny</button> "
        "<button type='submit' name='_action' value='allow'>Connect</button></form>"
    )


async def device_verification_endpoint(request: Request) -> Response:
    """``/setup/connect``: where the person types the device flow's user code."""
    state = emulator_state(request)
    ctx = host_context(request)
    params = await read_params(request)
    with state.lock:
        session_user = _session_user(state, request)
        user_code = params.get("user_code", "")
        if request.method != "POST":
            return _page(
                "Connect", _device_form(ctx, user_code, session_user is not None)
            )
        username = session_user
        new_session = None
        if username is None:
            user = state.user(params.get("username"))
            if user is None or not hmac.compare_digest(
                params.get("password", "").encode(), user.password.encode()
            ):
                return _page(
                    "Connect", _device_form(ctx, user_code, False, _LOGIN_FAILED)
                )
            username = new_session = user.username
        approve = params.get("_action", "allow") == "allow"
        try:
            set_device_status(state, user_code, username, approve)
        except KeyError:
            form = _device_form(ctx, user_code, True, "Invalid or expired code.")
            return _page("Connect", form)
        text = "You're connected." if approve else "Access denied."
        response = _page("Connect", f"<h1>{text}</h1><p>You can close this window.</p>")
        if new_session:
            _start_session(state, response, new_session)
        return response
