"""Resource-side endpoints: revoke (RFC 7009), introspect (RFC 7662), UserInfo, the
identity URL, discovery, keys and auth configuration (reference 1.3, 5-9). The REST API
is in :mod:`.rest`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ._ids import to_18
from .constants import API_VERSIONS, CLAIMS_SUPPORTED, ID_TOKEN_KID, SCOPES_SUPPORTED
from .crypto import cached_private_key, jwk_of
from .jwt_access import ACCESS_TOKEN_KEY, ACCESS_TOKEN_KID
from .rest import host_org
from .state import (
    AccessTokenRecord,
    EmulatedUser,
    EmulatorState,
    RefreshTokenRecord,
    refresh_token_expired,
)
from .tokens import ID_TOKEN_KEY
from .vhosts import HostContext, emulator_state, host_context
from .wire import (
    JSON_CONTENT_TYPE,
    NO_CACHE_HEADERS,
    OAuthError,
    ResponseFormat,
    identify_client,
    oauth_error_response,
    oauth_response,
    read_params,
    response_format,
)

__all__ = [
    "auth_configuration",
    "discovery",
    "identity",
    "introspect",
    "jwks",
    "revoke",
    "userinfo",
]

_INVALID_SESSION = [
    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
]
_NOT_API = [
    {
        "message": "This session is not valid for use with the REST API",
        "errorCode": "INVALID_SESSION_ID",
    }
]
_API_SCOPES = {"api", "full"}
_REVOCABLE_HINTS = {"access_token", "refresh_token"}
_JSONP_CALLBACK = re.compile(r"[A-Za-z_$][\w$.]*")


def _active_access(
    state: EmulatorState, token: str | None, ctx: HostContext | None = None
) -> AccessTokenRecord | None:
    record = state.access_tokens.get(token or "")
    if record is None or record.revoked or record.expires_at <= state.now():
        return None
    if ctx is not None and not ctx.serves_token(state, record.org, record.issuer):
        return None  # another environment's token is unknown here
    return record


async def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    token = request.query_params.get("oauth_token")
    if token:
        return token
    if request.method == "POST":
        return (await read_params(request)).get("oauth_token")
    return None


# ---------------------------------------------------------------------- revoke
async def revoke(request: Request) -> Response:
    """``/services/oauth2/revoke``: POST form or GET ``?token=``, optional JSONP
    ``callback``."""
    state = emulator_state(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await read_params(request))
    token = params.get("token") or ""
    callback = params.get("callback")
    # Reference 5 / 14.8: the error body's format is not documented; the host org's
    # revoke_error_format is the default, format= and Accept still win.
    fmt = response_format(
        params, request.headers.get("accept"), _revoke_error_format(request, state)
    )
    hint = params.get("token_type_hint")
    if (hint and hint not in _REVOCABLE_HINTS) or _looks_like_jwt(token):
        # Reference 5: only access and refresh tokens can be revoked (an ID token or
        # an asset token cannot).
        error = OAuthError("unsupported_token_type", "unsupported token type")
        if callback and _JSONP_CALLBACK.fullmatch(callback):
            return _jsonp(callback, '{"error":"unsupported_token_type"}')
        return oauth_error_response(error, fmt)
    ctx = host_context(request)
    with state.lock:
        found = False
        access = state.access_tokens.get(token)
        refresh = state.refresh_tokens.get(token)
        # A token another environment issued is unknown here (invalid_token).
        if access is not None and not ctx.serves_token(
            state, access.org, access.issuer
        ):
            access = None
        if refresh is not None and not ctx.serves_token(
            state, refresh.org, refresh.issuer
        ):
            refresh = None
        if access is not None and not access.revoked:
            access.revoked = True
            found = True
        elif refresh is not None and refresh.status != "revoked":
            refresh.status = "revoked"
            for record in state.access_tokens.values():
                if record.refresh_token == token:
                    record.revoked = True
            found = True
    if callback and _JSONP_CALLBACK.fullmatch(callback):
        return _jsonp(callback, "{}" if found else '{"error":"invalid_token"}')
    if found:
        return Response(b"", status_code=200, headers=dict(NO_CACHE_HEADERS))
    return oauth_error_response(OAuthError("invalid_token", "invalid token"), fmt)


def _revoke_error_format(request: Request, state: EmulatorState) -> ResponseFormat:
    org = host_org(state, host_context(request))
    return org.revoke_error_format if org is not None else "json"


def _jsonp(callback: str, payload: str) -> Response:
    return Response(
        f"{callback}({payload});",
        media_type="application/javascript",
        status_code=200,
        headers=dict(NO_CACHE_HEADERS),
    )


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False
    return True


# ---------------------------------------------------------------------- introspect
def _policy_expired(
    state: EmulatorState, record: RefreshTokenRecord, now: float
) -> bool:
    """Expired by its app's refresh-token policy (reference 15.3; lock held)."""
    app = state.app_by_client_id(record.client_id)
    return app is not None and refresh_token_expired(app, record, now)


async def introspect(request: Request) -> Response:
    """``/services/oauth2/introspect``: client auth required; own tokens unless
    introspect-all."""
    state = emulator_state(request)
    ctx = host_context(request)
    params = await read_params(request)
    token = params.get("token") or ""
    with state.lock:
        try:
            app, verified = identify_client(
                state, params, request.headers.get("authorization")
            )
            if app.client_secret and not verified:
                raise OAuthError("invalid_client", "invalid client credentials")
        except OAuthError as exc:
            return oauth_error_response(exc)
        now = state.now()
        record: AccessTokenRecord | RefreshTokenRecord | None
        record = state.access_tokens.get(token)
        body: dict[str, Any] = {"active": False}
        if isinstance(record, AccessTokenRecord):
            ok = (
                ctx.serves_token(state, record.org, record.issuer)
                and not record.revoked
                and record.expires_at > now
                and record.introspectable
                and (record.client_id == app.client_id or app.is_introspect_all_tokens)
            )
            if ok:
                body = {
                    "active": True,
                    "scope": " ".join(record.scopes),
                    "client_id": record.client_id,
                    "username": record.username,
                    "sub": record.id_url,
                    "token_type": "access_token",
                    "exp": int(record.expires_at),
                    "iat": int(record.issued_at),
                    "nbf": int(record.issued_at),
                }
        else:
            refresh = state.refresh_tokens.get(token)
            if (
                refresh is not None
                and ctx.serves_token(state, refresh.org, refresh.issuer)
                and refresh.status == "active"
                and (refresh.client_id == app.client_id or app.is_introspect_all_tokens)
                and not _policy_expired(state, refresh, now)
            ):
                body = {
                    "active": True,
                    "scope": " ".join(refresh.scopes),
                    "client_id": refresh.client_id,
                    "username": refresh.username,
                    "sub": refresh.id_url,
                    "token_type": "refresh_token",
                    "iat": int(refresh.issued_at),
                    "nbf": int(refresh.issued_at),
                }
    return oauth_response(body)


# ---------------------------------------------------------------------- identity
def _urls(instance_url: str, org_id: str, user_id: str, version: str) -> dict[str, str]:
    base = instance_url
    v = version
    return {
        "enterprise": f"{base}/services/Soap/c/{v}/{org_id[:15]}",
        "metadata": f"{base}/services/Soap/m/{v}/{org_id[:15]}",
        "partner": f"{base}/services/Soap/u/{v}/{org_id[:15]}",
        "rest": f"{base}/services/data/v{v}/",
        "sobjects": f"{base}/services/data/v{v}/sobjects/",
        "search": f"{base}/services/data/v{v}/search/",
        "query": f"{base}/services/data/v{v}/query/",
        "recent": f"{base}/services/data/v{v}/recent/",
        "tooling_soap": f"{base}/services/Soap/T/{v}/{org_id[:15]}",
        "tooling_rest": f"{base}/services/data/v{v}/tooling/",
        "profile": f"{base}/{user_id}",
        "feeds": f"{base}/services/data/v{v}/chatter/feeds",
        "groups": f"{base}/services/data/v{v}/chatter/groups",
        "users": f"{base}/services/data/v{v}/chatter/users",
        "feed_items": f"{base}/services/data/v{v}/chatter/feed-items",
        "feed_elements": f"{base}/services/data/v{v}/chatter/feed-elements",
        "custom_domain": base,
    }


def _version_param(value: str | None) -> str:
    if not value:
        return "{version}"
    if value == "latest":
        return API_VERSIONS[-1][1]
    return value.removeprefix("v")


def _photos(instance_url: str, user: EmulatedUser) -> dict[str, str]:
    return {
        "picture": f"{instance_url}/profilephoto/005/F",
        "thumbnail": f"{instance_url}/profilephoto/005/T",
    }


def _identity_body(
    state: EmulatorState, record: AccessTokenRecord, user: EmulatedUser, version: str
) -> dict[str, Any]:
    org = state.org_of(user)
    base = record.instance_url
    return {
        "id": record.id_url.rsplit("/id/", 1)[0] + f"/id/{org.org_id}/{user.user_id}",
        "asserted_user": user.username == record.username,
        "user_id": user.user_id,
        "organization_id": org.org_id,
        "username": user.username,
        "nick_name": user.username.split("@", 1)[0],
        "display_name": user.display_name,
        "email": user.email,
        "email_verified": True,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "timezone": user.timezone,
        "photos": _photos(base, user),
        "addr_street": None,
        "addr_city": None,
        "addr_state": None,
        "addr_country": "US",
        "addr_zip": None,
        "mobile_phone": None,
        "mobile_phone_verified": False,
        "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": _urls(base, org.org_id, user.user_id, version),
        "active": user.active,
        "user_type": user.user_type,
        "language": user.language,
        "locale": user.locale,
        "utcOffset": user.utc_offset,
        "last_modified_date": "2025-01-01T00:00:00Z",
        "is_app_installed": True,
    }


def _xml(value: Any, name: str) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(v, k) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if value is None:
        return f'<{name} xsi:nil="true"/>'
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


def _wants_xml(request: Request) -> bool:
    fmt = request.query_params.get("format", "").lower()
    if fmt:
        return fmt == "xml"
    for item in request.headers.get("accept", "").split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in ("application/json", "*/*"):
            return False
        if media in ("application/xml", "text/xml"):
            return True
    return False


def _bad_token() -> Response:
    return PlainTextResponse("Bad_OAuth_Token", status_code=403)


async def identity(request: Request) -> Response:
    """``/id/<org>/<user>``: Bearer or ``oauth_token``; ``403 Bad_OAuth_Token``
    otherwise."""
    state = emulator_state(request)
    token = await _bearer(request)
    try:
        org_id = to_18(request.path_params["org_id"])
        user_id = to_18(request.path_params["user_id"])
    except ValueError:
        return PlainTextResponse("Not Found", status_code=404)
    version = _version_param(request.query_params.get("version"))
    with state.lock:
        record = _active_access(state, token, host_context(request))
        if record is None:
            return _bad_token()
        subject = next(
            (
                u
                for u in state.users.values()
                if u.user_id[:15] == user_id[:15]
                and state.org_of(u).org_id[:15] == org_id[:15]
            ),
            None,
        )
        if subject is None:
            return PlainTextResponse("Not Found", status_code=404)
        own = subject.username == record.username
        if not own and not (set(record.scopes) & _API_SCOPES):
            return _bad_token()
        body = _identity_body(state, record, subject, version)
    return _identity_response(request, body, "user")


def _identity_response(request: Request, body: dict[str, Any], root: str) -> Response:
    """JSON, or XML on ``format=xml`` / ``Accept: application/xml`` (reference 8)."""
    if _wants_xml(request):
        xml = '<?xml version="1.0" encoding="UTF-8"?>' + _xml(body, root)
        return Response(xml, media_type="application/xml;charset=UTF-8")
    return Response(
        json.dumps(body, separators=(",", ":")),
        headers={"Content-Type": JSON_CONTENT_TYPE},
    )


async def userinfo(request: Request) -> Response:
    """``/services/oauth2/userinfo``: OIDC claims plus Salesforce extras (reference
    7)."""
    state = emulator_state(request)
    token = await _bearer(request)
    version = _version_param(request.query_params.get("version"))
    with state.lock:
        record = _active_access(state, token, host_context(request))
        user = state.user(record.username) if record else None
        if record is None or user is None:
            return PlainTextResponse(
                "Bad_OAuth_Token",
                status_code=state.userinfo_error_status,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        org = state.org_of(user)
        base = record.instance_url
        body: dict[str, Any] = {
            "sub": record.id_url,
            "user_id": user.user_id,
            "organization_id": org.org_id,
            "preferred_username": user.username,
            "nickname": user.username.split("@", 1)[0],
            "name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "zoneinfo": user.timezone,
            "photos": _photos(base, user),
            "profile": f"{base}/{user.user_id}",
            "picture": _photos(base, user)["picture"],
            "address": {"country": "US"},
            "is_salesforce_integration_user": user.is_integration_user,
            "urls": _urls(base, org.org_id, user.user_id, version),
            "active": user.active,
            "user_type": user.user_type,
            "language": user.language,
            "locale": user.locale,
            "utcOffset": user.utc_offset,
            "updated_at": "2025-01-01T00:00:00Z",
            "is_app_installed": True,
        }
    return _identity_response(request, body, "user")


# ---------------------------------------------------------------------- discovery and
# keys
async def discovery(request: Request) -> Response:
    """``/.well-known/openid-configuration`` relative to the host (and site path)."""
    base = host_context(request).base_url
    body = {
        "issuer": base,
        "authorization_endpoint": f"{base}/services/oauth2/authorize",
        "token_endpoint": f"{base}/services/oauth2/token",
        "revocation_endpoint": f"{base}/services/oauth2/revoke",
        "userinfo_endpoint": f"{base}/services/oauth2/userinfo",
        "jwks_uri": f"{base}/id/keys",
        "registration_endpoint": f"{base}/services/oauth2/register",
        "introspection_endpoint": f"{base}/services/oauth2/introspect",
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code", "token", "token id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "display_values_supported": ["page", "popup", "touch"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        ],
        "claims_supported": list(CLAIMS_SUPPORTED),
    }
    return JSONResponse(body)


async def jwks(request: Request) -> Response:
    """``/id/keys``: the ID-token key and every app's asset-token key."""
    state = emulator_state(request)
    keys = [jwk_of(cached_private_key(ID_TOKEN_KEY), ID_TOKEN_KID)]
    with state.lock:
        kids = sorted(
            {app.asset_token.kid for app in state.apps.values() if app.asset_token}
        )
        jwt_access = any(app.jwt_access_tokens for app in state.apps.values())
    keys.extend(jwk_of(cached_private_key("asset-token"), kid) for kid in kids)
    if jwt_access:  # reference 15.9: the key of JWT-format access tokens
        keys.append(jwk_of(cached_private_key(ACCESS_TOKEN_KEY), ACCESS_TOKEN_KID))
    return JSONResponse({"keys": keys})


async def auth_configuration(request: Request) -> Response:
    """``/.well-known/auth-configuration`` (reference 9)."""
    ctx = host_context(request)
    state = emulator_state(request)
    with state.lock:
        org = ctx.org or state.orgs.get(state.default_org)
        org_id = org.org_id[:15] if org else None
    body: dict[str, Any] = {
        "OrgId": org_id,
        "Url": ctx.base_url,
        "MobileSDK": {
            "UseiOSNativeBrowserForAuthentication": False,
            "UseAndroidNativeBrowserForAuthentication": False,
            "shareBrowserSessionIOS": False,
            "shareBrowserSessionAndroid": False,
        },
        "LoginPage": None,
        "SamlProviders": [],
        "AuthProviders": [],
        "CertificateLogin": None,
        "LoginPageType": "standard",
        "LoginPageTypeConfigs": {},
    }
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private",
    }
    return JSONResponse(body, headers=headers)
