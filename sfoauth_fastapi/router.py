"""The router factory: ``GET /login``, ``GET /callback``, ``POST /disconnect``.

:func:`get_sfoauth_router` builds the routes for one :class:`~sfoauth_fastapi.SFOAuth`;
its closures capture that object, so nothing lives in module globals (STYLE.md C10).
Routes are thin: they take what FastAPI parsed and call the flow helpers below, which
hold the security rules (SECURITY.md items 1-7):

* login: PKCE S256 always, ``state`` from ``secrets``, both kept server-side with the
  validated ``next`` and the issuer; the browser gets a signed HttpOnly cookie with a
  flow id. A login started cross-site asks Salesforce for consent (no silent linking).
* callback: the flow is taken once (atomic), must be unexpired, from the same browser
  and user, with the exact state; the code is exchanged at the token endpoint of the
  recorded issuer with the configured ``redirect_uri``; a different Salesforce user or
  org never replaces an existing connection; the answer redirects to a URL without
  ``code``/``state`` and is ``no-store``/``no-referrer``.
* disconnect: POST only, refused cross-site; revokes at Salesforce and always removes
  the local tokens.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from sfoauth_core.exceptions import (
    ConfigurationError,
    SFOAuthError,
    StorageError,
)
from sfoauth_core.flows import id_token, web_server
from sfoauth_core.flows.endpoints import endpoints_for

from ._urls import safe_next_path
from .dependencies import CallbackParams, SalesforceCallback, call_hook
from .errors import NO_STORE_HEADERS, ErrorCode, code_for, error_responses, status_for
from .state import PendingFlow, new_flow_id

if TYPE_CHECKING:
    from .app import SFOAuth

__all__ = ["get_sfoauth_router"]

security_log = logging.getLogger("sfoauth.security")

_PROMPTS = frozenset({"login", "consent", "select_account"})
_MAX_PARAM = 2048


def _error(code: ErrorCode) -> JSONResponse:
    return JSONResponse(
        {"detail": code.value}, status_code=status_for(code), headers=NO_STORE_HEADERS
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
    sf: SFOAuth,
    request: Request,
    key: str | None,
    *,
    next_url: str | None,
    scope: str | None,
    prompt: str | None,
    login_hint: str | None,
) -> Response:
    """``GET /login``: remember a new flow server-side and send the browser to
    Salesforce."""
    minted: str | None = None
    if key is None:
        if sf.identity is None:
            return _error(ErrorCode.NOT_AUTHENTICATED)
        key = minted = sf.identity.new_key()
    scopes: list[str] | None = None
    if scope is not None:
        scopes = scope.split()
        # Per-request scopes narrow the configured ones; they never widen or change
        # the shared configuration (SECURITY.md item 28).
        if not scopes or any(s not in sf.app.scopes for s in scopes):
            return _error(ErrorCode.INVALID_REQUEST)
    if prompt is not None and (
        not prompt.split() or not set(prompt.split()) <= _PROMPTS
    ):
        return _error(ErrorCode.INVALID_REQUEST)
    if login_hint is not None and (
        len(login_hint) > 255 or not login_hint.isprintable()
    ):
        return _error(ErrorCode.INVALID_REQUEST)
    if _is_cross_site(request):
        # A login another site started must not link an account silently (item 7).
        prompt = " ".join(sorted({*(prompt or "").split(), "consent"}))
    try:
        auth = sf.oauth.authorization_url(
            scopes=scopes, prompt=prompt, login_hint=login_hint
        )
    except ConfigurationError:
        return _error(ErrorCode.INVALID_REQUEST)
    assert auth.code_verifier is not None  # PKCE is always on for this flow
    flow_id = new_flow_id()
    flow = PendingFlow(
        state=auth.state,
        code_verifier=auth.code_verifier,
        nonce=auth.nonce,
        next_url=safe_next_path(next_url, sf.default_next),
        user_key=key,
        redirect_uri=auth.redirect_uri or "",
        issuer=auth.issuer or sf.app.login_url,
        expires_at=time.time() + sf.flow_ttl,
    )
    try:
        await sf.pending_flows.put(flow_id, flow)
    except StorageError:
        security_log.error("could not save a pending login (storage failed)")
        return _error(ErrorCode.STORAGE_UNAVAILABLE)
    response = RedirectResponse(
        auth.url, status_code=status.HTTP_302_FOUND, headers=NO_STORE_HEADERS
    )
    response.set_cookie(
        sf.flow_cookie_name,
        sf.signer.sign("flow", flow_id),
        max_age=int(sf.flow_ttl),
        path="/",
        secure=sf.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    if minted is not None and sf.identity is not None:
        sf.identity.set_cookie(response, minted)
    return response


def _reject(sf: SFOAuth, code: ErrorCode, why: str) -> Response:
    # A security event: the reason, never the values (SECURITY.md item 1).
    security_log.warning("sfoauth callback rejected: %s (%s)", code.value, why)
    response = _error(code)
    response.delete_cookie(
        sf.flow_cookie_name, path="/", secure=sf.cookie_secure, httponly=True
    )
    return response


async def finish_login(
    sf: SFOAuth, request: Request, key: str | None, params: CallbackParams
) -> Response:
    """``GET /callback``: check the flow, exchange the code, store the connection."""
    try:
        # state=a&state=b: refused before the pending login is even looked up.
        web_server.callback_params(request.query_params.multi_items())
    except SFOAuthError as exc:
        return _reject(sf, code_for(exc), type(exc).__name__)
    flow_id = sf.signer.unsign(
        "flow", request.cookies.get(sf.flow_cookie_name), max_age=sf.flow_ttl
    )
    if flow_id is None:
        return _reject(sf, ErrorCode.INVALID_STATE, "no pending login in this browser")
    try:
        flow = await sf.pending_flows.take(flow_id)
    except StorageError:
        return _reject(sf, ErrorCode.STORAGE_UNAVAILABLE, "pending login unreadable")
    if flow is None:
        return _reject(sf, ErrorCode.INVALID_STATE, "unknown, used or expired login")
    if flow.is_expired():
        return _reject(sf, ErrorCode.INVALID_STATE, "expired login")
    if key is None or not hmac.compare_digest(key.encode(), flow.user_key.encode()):
        return _reject(sf, ErrorCode.INVALID_STATE, "login started by another user")
    if any(len(v) > _MAX_PARAM for v in params.as_dict().values()):
        return _reject(sf, ErrorCode.INVALID_CALLBACK, "oversized parameter")
    try:
        code = web_server.parse_authorization_response(
            params.as_dict(), expected_state=flow.state, expected_issuer=flow.issuer
        )
    except SFOAuthError as exc:
        return _reject(sf, code_for(exc), type(exc).__name__)
    try:
        # Token endpoint and redirect_uri from the server-side record (item 5).
        token = await sf.oauth.run(
            web_server.exchange_code(
                sf.app,
                code,
                code_verifier=flow.code_verifier,
                redirect_uri=flow.redirect_uri or None,
                token_url=endpoints_for(flow.issuer).token,
            )
        )
    except SFOAuthError as exc:
        return _reject(sf, code_for(exc), f"code exchange failed: {type(exc).__name__}")
    if not token.org_id or not token.user_id:
        return _reject(sf, ErrorCode.SALESFORCE_ERROR, "token without identity")
    if token.id_token and flow.nonce:
        # OpenID Connect: the ID token must be signed by the issuer and carry this
        # login's nonce (SECURITY.md item 14).
        try:
            await sf.oauth.run(
                id_token.verify_id_token(
                    sf.app,
                    token,
                    nonce=flow.nonce,
                    issuer=flow.issuer,
                    jwks_cache=sf.oauth._jwks_cache,
                )
            )
        except SFOAuthError as exc:
            await _revoke_quietly(sf, token.refresh_token or token.access_token)
            return _reject(sf, code_for(exc), f"ID token refused: {type(exc).__name__}")
    store_key = sf.key_for_user(key)
    try:
        existing = await sf.manager.record(store_key)
    except StorageError:
        return _reject(sf, ErrorCode.STORAGE_UNAVAILABLE, "store unreadable")
    if existing is not None and (
        existing.token.org_id != token.org_id or existing.token.user_id != token.user_id
    ):
        # Another Salesforce user or org never replaces a connection silently (item
        # 7); ids compare case-sensitively (item 18). The new grant is given back.
        await _revoke_quietly(sf, token.refresh_token or token.access_token)
        return _reject(sf, ErrorCode.CONNECTION_CONFLICT, "different Salesforce user")
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
        return _reject(sf, code_for(exc), f"saving failed: {type(exc).__name__}")
    if sf.on_login is not None:
        await call_hook(sf.on_login, request, sf.session_for(store_key, token))
    response = RedirectResponse(
        flow.next_url, status_code=status.HTTP_303_SEE_OTHER, headers=NO_STORE_HEADERS
    )
    response.delete_cookie(
        sf.flow_cookie_name, path="/", secure=sf.cookie_secure, httponly=True
    )
    if rotated is not None and sf.identity is not None:
        sf.identity.set_cookie(response, rotated)
    return response


async def _revoke_quietly(sf: SFOAuth, value: str) -> None:
    try:
        await sf.oauth.revoke(value)
    except SFOAuthError:
        security_log.warning("could not revoke a refused grant")


async def disconnect(
    sf: SFOAuth, request: Request, key: str | None, *, next_url: str | None
) -> Response:
    """``POST /disconnect``: revoke at Salesforce (best effort), delete locally."""
    if _is_cross_site(request) or _has_foreign_origin(request):
        security_log.warning("sfoauth disconnect refused: cross-site request")
        return _error(ErrorCode.CROSS_SITE_REQUEST)
    if key is None:
        return _error(ErrorCode.NOT_AUTHENTICATED)
    store_key = sf.key_for_user(key)
    try:
        await sf.manager.revoke(store_key)
    except StorageError:
        return _error(ErrorCode.STORAGE_UNAVAILABLE)
    sf.identities.pop(store_key, None)
    if next_url is not None:
        return RedirectResponse(
            safe_next_path(next_url, sf.default_next),
            status_code=status.HTTP_303_SEE_OTHER,
            headers=NO_STORE_HEADERS,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE_HEADERS)


def get_sfoauth_router(sf: SFOAuth) -> APIRouter:
    """Build the login, callback and disconnect routes for ``sf``.

    Routes are named ``sfoauth:login``, ``sfoauth:callback`` and
    ``sfoauth:disconnect``; mount with ``app.include_router(sf.router,
    prefix="/salesforce")``.
    """
    router = APIRouter(tags=["salesforce"])
    user_key: Any = sf.user_key
    callback = SalesforceCallback()

    @router.get(
        "/login",
        name="sfoauth:login",
        status_code=status.HTTP_302_FOUND,
        response_class=RedirectResponse,
        summary="Start connecting Salesforce",
        responses=error_responses(
            ErrorCode.NOT_AUTHENTICATED,
            ErrorCode.INVALID_REQUEST,
            ErrorCode.STORAGE_UNAVAILABLE,
        ),
    )
    async def login(
        request: Request,
        next_url: str | None = Query(
            None, alias="next", description="Same-origin path to return to."
        ),
        scope: str | None = Query(None, description="A subset of the app's scopes."),
        prompt: str | None = Query(None, description="login, consent, select_account"),
        login_hint: str | None = Query(None, description="Username to prefill."),
        key: str | None = Depends(user_key),
    ) -> Response:
        return await start_login(
            sf,
            request,
            key,
            next_url=next_url,
            scope=scope,
            prompt=prompt,
            login_hint=login_hint,
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
        params: CallbackParams = Depends(callback),  # noqa: B008
        key: str | None = Depends(user_key),
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
        next_url: str | None = Query(
            None, alias="next", description="Same-origin path to go to afterwards."
        ),
        key: str | None = Depends(user_key),
    ) -> Response:
        return await disconnect(sf, request, key, next_url=next_url)

    return router


def login_redirect_path(sf: SFOAuth, request: Request) -> str:
    """Where an unconnected browser is sent: the login route with ``next`` set to
    the current path."""
    try:
        base = str(request.app.url_path_for("sfoauth:login"))
    except Exception:  # noqa: BLE001 - router not mounted on this app
        base = sf.login_path
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return f"{base}?next={quote(here, safe='')}"
