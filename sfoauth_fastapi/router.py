"""The router factory: ``GET``/``POST /login``, ``GET /callback``, ``POST /disconnect``.

:func:`get_sfoauth_router` builds the routes for one :class:`~sfoauth_fastapi.SFOAuth`;
its closures capture that object, so nothing lives in module globals (STYLE.md C10).
The login itself is the core's transaction (:mod:`sfoauth_core.login`: options,
``begin_login``, ``complete_login``, the identity rule, the error codes); this module
only binds it to FastAPI (SECURITY.md items 1-7):

* login: ``GET`` shows the "Connect to Salesforce" interstitial (with the reason: a
  refused connection, a disconnect); its button ``POST``s, refused cross-site, and
  only that starts the flow (``login_on_get=True`` restores the redirect on ``GET``).
  The core's pending login is stored server-side; the browser gets a signed HttpOnly
  cookie listing its pending logins (several tabs may log in at once). A login started
  cross-site on ``GET`` asks Salesforce for consent (no silent linking).
* callback: the login must be one this browser's cookie lists; it is taken once
  (atomic), then the core checks it (unexpired, same user, exact state, ``iss``) and
  exchanges the code at the recorded token URL with the recorded ``redirect_uri``; a
  different Salesforce user or org never replaces an existing connection; the answer
  redirects to a URL without ``code``/``state`` and is ``no-store``/``no-referrer``.
* disconnect: POST only, refused cross-site; revokes at Salesforce and always removes
  the local tokens.
"""

# No ``from __future__ import annotations`` here: the routes' ``Annotated`` dependencies
# close over this ``SFOAuth``'s ``user_key``, which FastAPI can only see in evaluated
# annotations (it resolves string annotations in the module's globals only).

import hmac
import logging
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from sfoauth_core.exceptions import SFOAuthError, StorageError, app_access_hint
from sfoauth_core.flows import web_server
from sfoauth_core.login import (
    MAX_CALLBACK_PARAMETER,
    KnownConnection,
    LoginError,
    begin_login,
    complete_login,
    identity_conflict,
    read_login_options,
    refuse_login,
)

from ._urls import safe_next_path
from .dependencies import CallbackParams, SalesforceCallback, call_hook
from .errors import (
    NO_STORE_HEADERS,
    ErrorCode,
    code_for,
    error_responses,
    login_error_code,
)
from .pages import (
    DISCONNECTED_REASON,
    PAGE_HEADERS,
    RENEW_REASON,
    error_response,
    interstitial,
    login_base,
    wants_html,
)
from .state import MAX_PENDING_LOGINS

if TYPE_CHECKING:
    from .app import SFOAuth

__all__ = ["get_sfoauth_router"]

security_log = logging.getLogger("sfoauth.security")

_NEXT = "Same-origin path to return to."
_SCOPE = "A subset of the app's scopes."
_PROMPT = "login, consent, select_account"
_HINT = "Username to prefill."
_DOMAIN = "A login URL's name from `login_urls` (a sandbox...)."
NextQuery = Annotated[str | None, Query(alias="next", description=_NEXT)]

#: How long the login page remembers that this browser disconnected Salesforce.
_DISCONNECTED_MAX_AGE = 30 * 24 * 3600


def _error(
    sf: "SFOAuth",
    request: Request,
    code: ErrorCode,
    next_path: str | None = None,
    hint: str | None = None,
) -> Response:
    """An error of sfoauth's own routes: its page links back into the app, to
    ``next_path`` (default: ``default_next``), never to the route itself."""
    return error_response(
        sf,
        request,
        code,
        next_path=next_path if next_path else sf.default_next,
        hint=hint,
    )


def here_path(request: Request, sf: "SFOAuth") -> str:
    """The request's own path and query, as a safe ``next`` value."""
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return safe_next_path(here, sf.default_next)


def with_next(base: str, next_path: str) -> str:
    """``base`` with ``next=<next_path>`` added to its query."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}next={quote(next_path, safe='')}"


def _pending_ids(sf: "SFOAuth", request: Request) -> list[str]:
    """The ids of the logins this browser has pending (newest last)."""
    value = sf.signer.unsign(
        "flow", request.cookies.get(sf.flow_cookie_name), max_age=sf.flow_ttl
    )
    if not value:
        return []
    return [i for i in value.split(",") if i][-MAX_PENDING_LOGINS:]


def _set_pending_ids(sf: "SFOAuth", response: Response, ids: list[str]) -> None:
    if not ids:
        response.delete_cookie(
            sf.flow_cookie_name, path="/", secure=sf.cookie_secure, httponly=True
        )
        return
    response.set_cookie(
        sf.flow_cookie_name,
        sf.signer.sign("flow", ",".join(ids[-MAX_PENDING_LOGINS:])),
        max_age=int(sf.flow_ttl),
        path="/",
        secure=sf.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def _is_cross_site(request: Request) -> bool:
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


def _has_foreign_origin(request: Request) -> bool:
    """True when ``Origin`` is present and names another host than this request's.

    Hosts are compared (not schemes), so a TLS-terminating proxy does not cause false
    refusals. ``Origin: null`` (sandboxed frames, pages with ``no-referrer``) counts as
    foreign unless the browser itself vouches that the request is same-origin
    (``Sec-Fetch-Site: same-origin``).
    """
    origin = request.headers.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return request.headers.get("sec-fetch-site", "").lower() != "same-origin"
    try:
        origin_host = urlsplit(origin).netloc.lower()
    except ValueError:
        return True
    return origin_host != request.headers.get("host", "").lower()


async def start_login(
    sf: "SFOAuth",
    request: Request,
    key: str | None,
    *,
    next_url: str | None,
    scope: str | None,
    prompt: str | None,
    login_hint: str | None,
    domain: str | None = None,
    status_code: int = status.HTTP_303_SEE_OTHER,
) -> Response:
    """``POST /login`` (or ``GET`` with ``login_on_get``): the core begins the login
    at the app's login URL (or the one named ``domain`` in ``login_urls``), the record
    waits server-side, the browser gets its id in the flow cookie."""
    login_app = sf.app
    if domain is not None:
        picked = sf.login_apps.get(domain)
        if picked is None:
            return _error(sf, request, ErrorCode.INVALID_REQUEST)
        login_app = picked
    minted: str | None = None
    if key is None:
        if sf.identity is None:
            return _anonymous(sf, request)
        key = minted = sf.identity.new_key()
    try:
        options = read_login_options(
            next=next_url,
            scope=scope,
            prompt=prompt,
            login_hint=login_hint,
            allowed_scopes=sf.app.scopes,
        )
        # The host picked here issues the grant: the pending login records its
        # issuer and token URL, the code is exchanged there and the token keeps that
        # token_url for every later refresh and revocation.
        url, pending = begin_login(
            login_app,
            options,
            user=key,
            ttl=sf.flow_ttl,
            # A login another site started must not link an account silently (item 7).
            force_consent=_is_cross_site(request),
        )
    except LoginError as failure:
        return _error(sf, request, login_error_code(failure))
    flow_id = sf.signer.flow_id_for(pending.state)
    try:
        await sf.pending_flows.put(flow_id, pending)
    except StorageError as exc:
        security_log.error("could not save a pending login: %s", exc)
        return _error(sf, request, ErrorCode.STORAGE_UNAVAILABLE)
    response = RedirectResponse(url, status_code=status_code, headers=NO_STORE_HEADERS)
    pending_ids = [i for i in _pending_ids(sf, request) if i != flow_id]
    _set_pending_ids(sf, response, [*pending_ids, flow_id])
    if minted is not None and sf.identity is not None:
        sf.identity.set_cookie(response, minted)
    return response


class _Callback:
    """One callback being answered: the browser's pending flows, minus the one this
    callback used, go back in its cookie whatever the outcome."""

    def __init__(self, sf: "SFOAuth", request: Request) -> None:
        self.sf = sf
        self.request = request
        self.pending = _pending_ids(sf, request)
        self.used: str | None = None
        self.next_path: str | None = None

    def finish(self, response: Response) -> Response:
        if self.used is not None:
            _set_pending_ids(
                self.sf, response, [i for i in self.pending if i != self.used]
            )
        return response

    def reject(
        self, code: ErrorCode, why: str, cause: BaseException | None = None
    ) -> Response:
        # A security event: the reason, never the values (SECURITY.md item 1).
        security_log.warning("sfoauth callback rejected: %s (%s)", code.value, why)
        hint = app_access_hint(cause) if cause is not None else None
        return self.finish(_error(self.sf, self.request, code, self.next_path, hint))

    def fail(self, failure: LoginError) -> Response:
        code = login_error_code(failure)
        if failure.cause is not None and code in (
            ErrorCode.APP_MISCONFIGURED,
            ErrorCode.SALESFORCE_UNAVAILABLE,
        ):
            security_log.error("sfoauth code exchange failed: %s", failure.cause)
        return self.reject(code, failure.reason, failure.cause)


async def finish_login(
    sf: "SFOAuth", request: Request, key: str | None, params: CallbackParams
) -> Response:
    """``GET /callback``: find this browser's pending login, let the core complete it,
    apply the identity rule, store the connection."""
    answer = _Callback(sf, request)
    try:
        # state=a&state=b: refused before the pending login is even looked up.
        web_server.callback_params(request.query_params.multi_items())
    except SFOAuthError as exc:
        return answer.reject(code_for(exc), type(exc).__name__)
    if not answer.pending:
        return answer.reject(
            ErrorCode.INVALID_STATE, "no pending login in this browser"
        )
    if params.state is None or len(params.state) > MAX_CALLBACK_PARAMETER:
        return answer.reject(ErrorCode.INVALID_STATE, "callback without a usable state")
    flow_id = sf.signer.flow_id_for(params.state)
    if not any(hmac.compare_digest(flow_id, i) for i in answer.pending):
        # Not a login this browser started (or one it already finished).
        return answer.reject(ErrorCode.INVALID_STATE, "no such login in this browser")
    answer.used = flow_id
    try:
        flow = await sf.pending_flows.take(flow_id)
    except StorageError as exc:
        security_log.error("could not read a pending login: %s", exc)
        return answer.reject(ErrorCode.STORAGE_UNAVAILABLE, "pending login unreadable")
    if flow is None:
        return answer.reject(ErrorCode.INVALID_STATE, "unknown, used or expired login")
    answer.next_path = flow.next_url
    try:
        done = await sf.oauth.run(
            complete_login(
                sf.app,
                flow,
                params.as_dict(),
                user=_finisher(sf, key, flow.user),
                jwks_cache=sf.oauth.jwks_cache,
            )
        )
    except LoginError as failure:
        return answer.fail(failure)
    key = cast("str", key)  # the record names who started it; the core checked
    token = done.token
    store_key = sf.key_for_user(key)
    try:
        existing = await sf.manager.record(store_key)
    except StorageError as exc:
        security_log.error("could not read the token store: %s", exc)
        return answer.reject(ErrorCode.STORAGE_UNAVAILABLE, "store unreadable")
    known = (
        []
        if existing is None
        else [
            KnownConnection(
                existing.token.org_id or "", existing.token.user_id or "", mine=True
            )
        ]
    )
    conflict = identity_conflict(token, known, one_per_user=True)
    if conflict is not None:
        # The new grant is given back; the connection stays as it was (item 7).
        try:
            await sf.oauth.run(
                refuse_login(sf.app, done, conflict, "different Salesforce user")
            )
        except LoginError as failure:
            return answer.fail(failure)
    rotated: str | None = None
    try:
        if sf.identity is not None and key.startswith("anon:"):
            # The default identity rotates at login; the old id's grant is superseded.
            rotated = sf.identity.new_key()
            await sf.manager.save(
                sf.key_for_user(rotated), token, revoke_superseded=False
            )
            if existing is not None:
                await sf.manager.revoke(store_key)
            store_key = sf.key_for_user(rotated)
        else:
            await sf.manager.save(store_key, token)
    except SFOAuthError as exc:
        security_log.error("could not save a new connection: %s", exc)
        return answer.reject(code_for(exc), f"saving failed: {type(exc).__name__}")
    if sf.on_login is not None:
        await call_hook(sf.on_login, request, sf.session_for(store_key, token))
    response = RedirectResponse(
        done.next_url or sf.default_next,
        status_code=status.HTTP_303_SEE_OTHER,
        headers=NO_STORE_HEADERS,
    )
    response.delete_cookie(
        sf.disconnected_cookie_name,
        path="/",
        secure=sf.cookie_secure,
        httponly=True,
    )
    if rotated is not None and sf.identity is not None:
        sf.identity.set_cookie(response, rotated)
    return answer.finish(response)


def _finisher(sf: "SFOAuth", key: str | None, started_by: str | None) -> str | None:
    """Who finishes the login, as the core compares it with who started it.

    With the app's own ``user_key``: the id. With the default identity the visitor id
    *is* the browser, and a finished login rotates it; the signed flow cookie already
    proves the login was started in this browser, so a second tab's login still
    completes after the first one rotated the id.
    """
    if (
        key is not None
        and started_by is not None
        and sf.identity is not None
        and key.startswith("anon:")
        and started_by.startswith("anon:")
    ):
        return started_by
    return key


async def disconnect(
    sf: "SFOAuth", request: Request, key: str | None, *, next_url: str | None
) -> Response:
    """``POST /disconnect``: revoke at Salesforce (best effort), delete locally."""
    if _refused_cross_site(request, "disconnect"):
        return _error(sf, request, ErrorCode.CROSS_SITE_REQUEST)
    if key is None:
        return _error(sf, request, ErrorCode.NOT_AUTHENTICATED)
    store_key = sf.key_for_user(key)
    try:
        await sf.manager.revoke(store_key)
    except StorageError as exc:
        security_log.error("could not remove a connection: %s", exc)
        return _error(sf, request, ErrorCode.STORAGE_UNAVAILABLE)
    sf.identities.pop(store_key, None)
    response: Response
    if next_url is None and wants_html(request):
        # A browser's form post (no ?next=): go somewhere the user sees the result,
        # not a 204 that leaves the form page as it was.
        next_url = sf.default_next
    if next_url is not None:
        response = RedirectResponse(
            safe_next_path(next_url, sf.default_next),
            status_code=status.HTTP_303_SEE_OTHER,
            headers=NO_STORE_HEADERS,
        )
    else:
        response = Response(
            status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE_HEADERS
        )
    # The login page says why the user is not connected; nothing reconnects until
    # they click (the login route starts a flow on POST only).
    response.set_cookie(
        sf.disconnected_cookie_name,
        "1",
        max_age=_DISCONNECTED_MAX_AGE,
        path="/",
        secure=sf.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


def _refused_cross_site(request: Request, what: str) -> bool:
    if _is_cross_site(request) or _has_foreign_origin(request):
        security_log.warning("sfoauth %s refused: cross-site request", what)
        return True
    return False


def _anonymous(sf: "SFOAuth", request: Request) -> Response:
    """The login route for a visitor the app has not identified: to the app's own
    login (``app_login_url``, coming back here), else 401 ``NOT_AUTHENTICATED``."""
    if sf.app_login_url and request.method == "GET":
        return RedirectResponse(
            with_next(sf.app_login_url, here_path(request, sf)),
            status_code=status.HTTP_303_SEE_OTHER,
            headers=NO_STORE_HEADERS,
        )
    return _error(sf, request, ErrorCode.NOT_AUTHENTICATED)


async def login_page(
    sf: "SFOAuth", request: Request, key: str | None, fields: dict[str, str | None]
) -> Response:
    """``GET /login``: the "Connect to Salesforce" page; its button POSTs."""
    if key is None and sf.identity is None:
        return _anonymous(sf, request)
    reason: str | None = None
    if key is not None:
        try:
            record = await sf.manager.record(sf.key_for_user(key))
        except StorageError as exc:
            security_log.error("could not read the token store: %s", exc)
            record = None
        if record is not None and record.needs_reauth:
            reason = RENEW_REASON
    if reason is None and request.cookies.get(sf.disconnected_cookie_name):
        reason = DISCONNECTED_REASON
    fields["next"] = safe_next_path(fields.get("next"), sf.default_next)
    page = interstitial(
        login_base(sf, request), fields, reason=reason, back=sf.default_next
    )
    return HTMLResponse(page, headers=PAGE_HEADERS)


def get_sfoauth_router(sf: "SFOAuth") -> APIRouter:
    """Build the login, callback and disconnect routes for ``sf``.

    Routes are named ``sfoauth:login`` (``GET``; ``POST`` is
    ``sfoauth:login-start``), ``sfoauth:callback`` and ``sfoauth:disconnect``; mount
    with ``app.include_router(sf.router,
    prefix="/salesforce")``.
    """
    router = APIRouter(tags=["salesforce"])
    user_key: Any = sf.user_key
    callback = SalesforceCallback()
    UserKey = Annotated[str | None, Depends(user_key)]  # noqa: N806 - a type alias

    login_errors = error_responses(
        ErrorCode.NOT_AUTHENTICATED,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.CROSS_SITE_REQUEST,
        ErrorCode.STORAGE_UNAVAILABLE,
    )

    @router.get(
        "/login",
        name="sfoauth:login",
        response_class=HTMLResponse,
        summary="The 'Connect to Salesforce' page (its button starts the login)",
        responses={
            200: {"description": "The page, with a POST form to this URL."},
            302: {"description": "With `login_on_get=True`: to Salesforce."},
            303: {"description": "An anonymous visitor: to `app_login_url`."},
            **login_errors,
        },
    )
    async def login(
        request: Request,
        key: UserKey,
        next_url: NextQuery = None,
        scope: Annotated[str | None, Query(description=_SCOPE)] = None,
        prompt: Annotated[str | None, Query(description=_PROMPT)] = None,
        login_hint: Annotated[str | None, Query(description=_HINT)] = None,
        domain: Annotated[str | None, Query(description=_DOMAIN)] = None,
    ) -> Response:
        if sf.login_on_get:
            return await start_login(
                sf,
                request,
                key,
                next_url=next_url,
                scope=scope,
                prompt=prompt,
                login_hint=login_hint,
                domain=domain,
                status_code=status.HTTP_302_FOUND,
            )
        fields = {
            "next": next_url,
            "scope": scope,
            "prompt": prompt,
            "login_hint": login_hint,
            "domain": domain,
        }
        return await login_page(sf, request, key, fields)

    @router.post(
        "/login",
        name="sfoauth:login-start",
        status_code=status.HTTP_303_SEE_OTHER,
        response_class=RedirectResponse,
        summary="Start connecting Salesforce (the interstitial's button)",
        responses=login_errors,
    )
    async def login_start(
        request: Request,
        key: UserKey,
        next_form: Annotated[str | None, Form(alias="next", description=_NEXT)] = None,
        scope: Annotated[str | None, Form(description=_SCOPE)] = None,
        prompt: Annotated[str | None, Form(description=_PROMPT)] = None,
        login_hint: Annotated[str | None, Form(description=_HINT)] = None,
        domain: Annotated[str | None, Form(description=_DOMAIN)] = None,
        next_query: Annotated[
            str | None,
            Query(alias="next", description="`next`, when not in the form."),
        ] = None,
    ) -> Response:
        if _refused_cross_site(request, "login"):
            return _error(sf, request, ErrorCode.CROSS_SITE_REQUEST)
        query = request.query_params
        return await start_login(
            sf,
            request,
            key,
            next_url=next_form if next_form is not None else next_query,
            scope=scope if scope is not None else query.get("scope"),
            prompt=prompt if prompt is not None else query.get("prompt"),
            login_hint=login_hint
            if login_hint is not None
            else query.get("login_hint"),
            domain=domain if domain is not None else query.get("domain"),
        )

    @router.get(
        "/callback",
        name="sfoauth:callback",
        status_code=status.HTTP_303_SEE_OTHER,
        response_class=RedirectResponse,
        summary="Salesforce redirects here after login",
        responses=error_responses(
            ErrorCode.INVALID_STATE,
            ErrorCode.INVALID_CALLBACK,
            ErrorCode.ACCESS_DENIED,
            ErrorCode.AUTHORIZATION_FAILED,
            ErrorCode.CONNECTION_CONFLICT,
            ErrorCode.SALESFORCE_ERROR,
            ErrorCode.APP_MISCONFIGURED,
            ErrorCode.SALESFORCE_UNAVAILABLE,
            ErrorCode.STORAGE_UNAVAILABLE,
        ),
    )
    async def callback_route(
        request: Request,
        params: Annotated[CallbackParams, Depends(callback)],
        key: UserKey,
    ) -> Response:
        return await finish_login(sf, request, key, params)

    @router.post(
        "/disconnect",
        name="sfoauth:disconnect",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Disconnect Salesforce (revoke and forget the tokens)",
        responses={
            303: {"description": "Disconnected; redirect to `next`."},
            **error_responses(
                ErrorCode.NOT_AUTHENTICATED,
                ErrorCode.CROSS_SITE_REQUEST,
                ErrorCode.STORAGE_UNAVAILABLE,
            ),
        },
    )
    async def disconnect_route(
        request: Request,
        key: UserKey,
        next_url: Annotated[
            str | None,
            Query(alias="next", description="Same-origin path to go to afterwards."),
        ] = None,
    ) -> Response:
        return await disconnect(sf, request, key, next_url=next_url)

    return router


def login_redirect_path(sf: "SFOAuth", request: Request) -> str:
    """Where an unconnected browser is sent: the login route with ``next`` set to
    the current path."""
    return with_next(login_base(sf, request), here_path(request, sf))
