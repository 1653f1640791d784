"""Token issuance (reference 2.2-2.4): access, refresh and ID tokens and the response
body.

Every function here runs with ``state.lock`` held.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .constants import ID_TOKEN_KID
from .crypto import (
    at_hash,
    cached_private_key,
    new_access_token,
    new_refresh_token,
    sign_jwt,
    token_signature,
)
from .jwt_access import jwt_access_token
from .state import (
    AccessTokenRecord,
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    EmulatorState,
    RefreshTokenRecord,
)
from .wire import OAuthError

__all__ = [
    "Grant",
    "check_user",
    "id_url_for",
    "issue_token_response",
    "resolve_scopes",
    "wants_refresh",
]

ID_TOKEN_KEY = "id-token"


@dataclass
class Grant:
    """Who gets tokens, for which app, through which host."""

    app: EmulatedApp
    user: EmulatedUser
    org: EmulatedOrg
    scopes: tuple[str, ...]
    issuer: str
    instance_url: str
    grant: str
    nonce: str | None = None


def id_url_for(issuer: str, org: EmulatedOrg, user: EmulatedUser) -> str:
    """``https://<host>/id/<18-char org>/<18-char user>``."""
    return f"{issuer}/id/{org.org_id}/{user.user_id}"


def wants_refresh(scopes: tuple[str, ...]) -> bool:
    """``refresh_token`` and ``offline_access`` are the scopes that allow a refresh
    token."""
    return "refresh_token" in scopes or "offline_access" in scopes


def resolve_scopes(app: EmulatedApp, requested: str | None) -> tuple[str, ...]:
    """The scopes granted for a request (the app's scopes when none are requested).

    Raises:
        OAuthError: ``invalid_scope`` when a requested scope is not allowed for the app.
    """
    allowed = set(app.scopes)
    if "refresh_token" in allowed:
        allowed.add("offline_access")
    if "offline_access" in allowed:
        allowed.add("refresh_token")
    if not requested or not requested.strip():
        return tuple(app.scopes)
    wanted = tuple(dict.fromkeys(requested.replace("+", " ").split()))
    for scope in wanted:
        if scope not in allowed and "full" not in allowed:
            raise OAuthError(
                "invalid_scope", "requested scope is invalid, unknown, or malformed"
            )
    return wanted


def check_user(org: EmulatedOrg, user: EmulatedUser) -> None:
    """Org and user must be able to log in (reference 2.7)."""
    if not org.active:
        raise OAuthError("inactive_org", "org is locked, closed, or suspended")
    if not user.active:
        raise OAuthError("inactive_user", "user is inactive")
    if user.ip_restricted:
        raise OAuthError("invalid_grant", "IP restricted or invalid login hours")


def _id_token(state: EmulatorState, grant: Grant, access_token: str, now: float) -> str:
    iat = int(now)
    claims: dict[str, Any] = {
        "at_hash": at_hash(access_token),
        "sub": id_url_for(grant.issuer, grant.org, grant.user),
        "aud": grant.app.client_id,
        "iss": grant.issuer,
        "iat": iat,
        "exp": iat + int(grant.app.id_token_validity),
        "auth_time": iat,
        "preferred_username": grant.user.username,
        "name": grant.user.display_name,
        "given_name": grant.user.first_name,
        "family_name": grant.user.last_name,
    }
    if "email" in grant.scopes:
        claims["email"] = grant.user.email
        claims["email_verified"] = True
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return sign_jwt(claims, cached_private_key(ID_TOKEN_KEY), ID_TOKEN_KID)


def _hybrid_fields(grant: Grant, access_token: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    base = grant.org.my_domain
    if "lightning" in grant.scopes:
        fields["lightning_domain"] = f"{base}.lightning.force.com"
        fields["lightning_sid"] = new_access_token(grant.org.org_id)
    if "visualforce" in grant.scopes:
        fields["visualforce_domain"] = f"{base}--c.vf.force.com"
        fields["visualforce_sid"] = new_access_token(grant.org.org_id)
    if "content" in grant.scopes:
        fields["content_domain"] = f"{base}--c.documentforce.com"
        fields["content_sid"] = new_access_token(grant.org.org_id)
    if fields:
        fields["csrf_token"] = secrets.token_urlsafe(32)
        fields["cookie-clientSrc"] = secrets.token_hex(16)
        fields["cookie-sid_Client"] = secrets.token_hex(16)
        fields["sidCookieName"] = "sid"
        fields["parent_sid"] = access_token
    return fields


def issue_token_response(
    state: EmulatorState,
    grant: Grant,
    *,
    refresh: bool | RefreshTokenRecord = False,
    include_scope: bool = True,
    include_signature: bool = True,
    include_issued_at: bool = True,
    include_id_token: bool = True,
    introspectable: bool = True,
    code: str | None = None,
    hybrid: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Store new tokens and build the success body in Salesforce's field order.

    Args:
        state: emulator state (lock held).
        grant: the subject of the tokens.
        refresh: ``True`` issues a new refresh token (new family); a
            :class:`RefreshTokenRecord` links the access token to that refresh token (a
            refresh without rotation); ``False`` issues none.
        include_scope: add ``scope`` (absent in password-flow responses).
        include_signature: add ``signature`` (when the app has a secret).
        include_issued_at: add ``issued_at``.
        include_id_token: add ``id_token`` when ``openid`` was granted.
        introspectable: ``False`` for password-flow session ids.
        code: authorization code the tokens come from (revoked if the code is replayed).
        hybrid: add hybrid child-session fields.
        extra: more fields (e.g. ``sfdc_community_url``).

    Returns:
        The response body (every value a string).
    """
    now = state.now()
    app, org, user = grant.app, grant.org, grant.user
    id_url = id_url_for(grant.issuer, org, user)
    issued_at = str(int(now * 1000))
    lifetime = float(
        app.session_timeout if app.session_timeout is not None else org.session_timeout
    )
    access = (
        jwt_access_token(
            issuer=grant.issuer,
            org_id=org.org_id,
            user_id=user.user_id,
            client_id=app.client_id,
            instance_url=grant.instance_url,
            scopes=grant.scopes,
            issued_at=now,
            expires_at=now + lifetime,
        )
        if app.jwt_access_tokens  # reference 15.9
        else new_access_token(org.org_id)
    )
    refresh_record: RefreshTokenRecord | None = None
    if isinstance(refresh, RefreshTokenRecord):
        refresh_record = refresh
        new_refresh = None
    elif refresh:
        value = new_refresh_token()
        refresh_record = RefreshTokenRecord(
            value=value,
            client_id=app.client_id,
            username=user.username,
            org=org.name,
            scopes=grant.scopes,
            id_url=id_url,
            issuer=grant.issuer,
            instance_url=grant.instance_url,
            issued_at=now,
            last_used=now,
            family=secrets.token_hex(8),
            code=code,
            grant_created_at=now,
        )
        state.refresh_tokens[value] = refresh_record
        new_refresh = value
    else:
        new_refresh = None
    state.access_tokens[access] = AccessTokenRecord(
        value=access,
        client_id=app.client_id,
        username=user.username,
        org=org.name,
        scopes=grant.scopes,
        id_url=id_url,
        instance_url=grant.instance_url,
        issued_at=now,
        expires_at=now + lifetime,
        grant=grant.grant,
        refresh_token=refresh_record.value if refresh_record else None,
        code=code,
        introspectable=introspectable,
        issuer=grant.issuer,
    )
    body: dict[str, str] = {"access_token": access}
    if new_refresh:
        body["refresh_token"] = new_refresh
    if include_signature and app.client_secret:
        body["signature"] = token_signature(app.client_secret, id_url, issued_at)
    if include_scope:
        body["scope"] = " ".join(grant.scopes)
    if include_id_token and "openid" in grant.scopes:
        body["id_token"] = _id_token(state, grant, access, now)
    body["instance_url"] = grant.instance_url
    body["id"] = id_url
    body["token_type"] = "Bearer"
    if include_issued_at:
        body["issued_at"] = issued_at
    if hybrid:
        body.update(_hybrid_fields(grant, access))
    if extra:
        body.update(extra)
    return body
