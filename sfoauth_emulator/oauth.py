"""The token endpoint, ``POST /services/oauth2/token``: every grant (reference 4 and
13).

Grants: ``authorization_code``/``hybrid_auth_code`` (RFC 6749 4.1, RFC 7636 PKCE),
``refresh_token``/``hybrid_refresh`` (RFC 6749 6, with Salesforce rotation and reuse
detection), ``password``, ``client_credentials``, JWT bearer (RFC 7523), the asset-token
exchange (RFC 8693) and Salesforce's non-standard device flow
(``response_type=device_code`` then ``grant_type=device&code=…``). Anything else:
``unsupported_grant_type``.

Error strings follow live Salesforce: a replayed or expired code and an expired JWT
assertion answer ``expired authorization code``; an unknown code ``invalid authorization
code``.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import jwt
from starlette.requests import Request
from starlette.responses import Response

from .access import (
    JWT_NOT_INSTALLED,
    check_app_access,
    check_ip_ranges,
    check_password_flow,
)
from .constants import (
    ACCESS_TOKEN_TYPE,
    JWT_BEARER_GRANT,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
)
from .crypto import (
    cached_private_key,
    new_user_code,
    s256_challenge,
    sign_jwt,
    verification_key,
)
from .state import (
    DeviceRecord,
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    EmulatorState,
    RefreshTokenRecord,
    refresh_token_expired,
)
from .tokens import (
    Grant,
    check_user,
    issue_token_response,
    resolve_scopes,
    wants_refresh,
)
from .vhosts import HostContext, emulator_state, host_context
from .wire import (
    OAuthError,
    identify_client,
    oauth_error_response,
    oauth_response,
    read_params,
    response_format,
)

__all__ = ["handle_token_request", "revoke_family", "token_endpoint"]

Params = Mapping[str, str]
Body = dict[str, Any]

_EXPIRED_TOKEN = ("invalid_grant", "expired access/refresh token")
#: Reference 15.1: the answer to a refresh whose refresh token is being processed.
_REFRESH_IN_PROGRESS = ("invalid_grant", "expired authorization code")


class _Call:
    """One token request, as the grant handlers see it."""

    def __init__(
        self,
        state: EmulatorState,
        ctx: HostContext,
        params: Params,
        authorization: str | None,
        client_ip: str,
    ) -> None:
        self.state = state
        self.ctx = ctx
        self.params = params
        self.authorization = authorization
        self.client_ip = client_ip

    def grant(
        self,
        app: EmulatedApp,
        user: EmulatedUser,
        org: EmulatedOrg,
        scopes: tuple[str, ...],
        grant_type: str,
    ) -> Grant:
        """A grant issued through this request's host (its issuer and instance)."""
        return Grant(
            app,
            user,
            org,
            scopes,
            self.ctx.base_url,
            self.ctx.instance_url(org),
            grant_type,
        )

    def client(self, *, secret_required: bool) -> EmulatedApp:
        app, verified = identify_client(self.state, self.params, self.authorization)
        if secret_required and not verified:
            raise OAuthError("invalid_client", "invalid client credentials")
        return app


def revoke_family(state: EmulatorState, record: RefreshTokenRecord) -> None:
    """Revoke every refresh token of ``record``'s grant and their access tokens."""
    members = {
        value
        for value, rec in state.refresh_tokens.items()
        if rec.family == record.family
    }
    for value in members:
        state.refresh_tokens[value].status = "revoked"
    for access in state.access_tokens.values():
        if access.refresh_token in members:
            access.revoked = True


def _community_extra(
    state: EmulatorState, issuer: str, org_name: str
) -> dict[str, str]:
    org = state.orgs[org_name]
    if org.site_url and issuer == org.site_url:
        return {"sfdc_community_url": issuer, "sfdc_community_id": org.site_id}
    return {}


# ---------------------------------------------------------------------- authorization
# code
def _authorization_code(call: _Call, grant_type: str) -> Body:
    state = call.state
    app, verified = identify_client(state, call.params, call.authorization)
    if not verified and not app.is_consumer_secret_optional:
        raise OAuthError("invalid_client", "invalid client credentials")
    value = call.params.get("code") or ""
    record = state.codes.get(value)
    if record is None or record.client_id != app.client_id:
        raise OAuthError("invalid_grant", "invalid authorization code")
    now = state.now()
    if record.used:
        # RFC 6749 4.1.2: a replayed code SHOULD revoke the tokens issued from it.
        for access in state.access_tokens.values():
            if access.code == value:
                access.revoked = True
        for refresh in list(state.refresh_tokens.values()):
            if refresh.code == value:
                revoke_family(state, refresh)
        raise OAuthError("invalid_grant", "expired authorization code")
    if now > record.created + app.code_lifetime:
        raise OAuthError("invalid_grant", "expired authorization code")
    if call.params.get("redirect_uri") != record.redirect_uri:
        raise OAuthError(
            "redirect_uri_mismatch", "redirect_uri must match configuration"
        )
    if record.challenge is not None:
        verifier = call.params.get("code_verifier")
        if not verifier:
            raise OAuthError("invalid_grant", "code verifier required")
        if not hmac.compare_digest(s256_challenge(verifier), record.challenge):
            raise OAuthError("invalid_request", "invalid code verifier")
    user = state.user(record.username)
    if user is None:
        raise OAuthError("invalid_grant", "authentication failure")
    org = state.org_of(user)
    check_user(org, user)
    if app.app_access_stage == "code_exchange":
        check_app_access(app, user, org)
    check_ip_ranges(app, call.client_ip)
    record.used = True
    grant = Grant(
        app,
        user,
        org,
        record.scopes,
        record.issuer,
        record.instance_url,
        grant_type,
        nonce=record.nonce,
    )
    return issue_token_response(
        state,
        grant,
        refresh=wants_refresh(record.scopes),
        code=value,
        hybrid=grant_type == "hybrid_auth_code" or record.hybrid,
        extra=_community_extra(state, record.issuer, org.name),
    )


# ---------------------------------------------------------------------- refresh
def _refresh(call: _Call, grant_type: str) -> Body:
    state = call.state
    app, verified = identify_client(state, call.params, call.authorization)
    if app.is_secret_required_for_refresh_token and not verified:
        raise OAuthError("invalid_client", "invalid client credentials")
    record = state.refresh_tokens.get(call.params.get("refresh_token") or "")
    if record is None or record.client_id != app.client_id:
        raise OAuthError(*_EXPIRED_TOKEN)
    if not call.ctx.serves_token(state, record.org, record.issuer):
        # Another environment (production vs sandbox, another org, not the site that
        # issued it) does not know the token: nothing happens to the grant.
        raise OAuthError(*_EXPIRED_TOKEN)
    if record.status == "rotated":
        # Reuse of an invalidated token: kill the whole grant (current token included).
        state.reuse_detected += 1
        revoke_family(state, record)
        raise OAuthError(*_EXPIRED_TOKEN)
    if record.status == "revoked":
        raise OAuthError(*_EXPIRED_TOKEN)
    now = state.now()
    if refresh_token_expired(app, record, now):
        # Reference 15.3: same answer as any dead grant.
        raise OAuthError(*_EXPIRED_TOKEN)
    user = state.user(record.username)
    if user is None:
        raise OAuthError(*_EXPIRED_TOKEN)
    org = state.org_of(user)
    check_user(org, user)
    check_app_access(app, user, org, admin_approval=False)
    check_ip_ranges(app, call.client_ip)
    record.last_used = now
    grant = Grant(
        app, user, org, record.scopes, record.issuer, record.instance_url, grant_type
    )
    hybrid = grant_type == "hybrid_refresh"
    extra = _community_extra(state, record.issuer, org.name)
    if not app.is_refresh_token_rotation_enabled:
        return issue_token_response(
            state, grant, refresh=record, hybrid=hybrid, extra=extra
        )
    record.status = "rotated"
    body = issue_token_response(state, grant, refresh=True, hybrid=hybrid, extra=extra)
    new = state.refresh_tokens[body["refresh_token"]]
    new.family = record.family
    new.grant_created_at = record.grant_created_at
    new.code = record.code
    return body


# ---------------------------------------------------------------------- password
def _password(call: _Call, grant_type: str) -> Body:
    state = call.state
    # Reference 4.9: the secret is required unless the app makes it optional; a
    # secret that is sent is always checked (reference 13 item 5).
    app, verified = identify_client(state, call.params, call.authorization)
    if not verified and not app.is_consumer_secret_optional:
        raise OAuthError("invalid_client", "invalid client credentials")
    check_password_flow(app)
    if call.ctx.kind == "site":
        # Reference 4.9: the flow is not supported for Experience Cloud sites.
        raise OAuthError("invalid_grant", "authentication failure")
    user = state.user(call.params.get("username"))
    if user is None or not call.ctx.accepts_org(state.org_of(user)):
        raise OAuthError("invalid_grant", "authentication failure")
    org = state.org_of(user)
    if org.username_password_blocked:
        raise OAuthError(*org.password_blocked_error)
    password = call.params.get("password") or ""
    expected = user.password + user.security_token
    ok = hmac.compare_digest(password.encode(), expected.encode()) or (
        user.trusted_ip
        and hmac.compare_digest(password.encode(), user.password.encode())
    )
    if not ok:
        raise OAuthError("invalid_grant", "authentication failure")
    check_user(org, user)
    check_app_access(app, user, org)
    scopes = tuple(
        s for s in app.scopes if s not in ("refresh_token", "offline_access")
    )
    grant = call.grant(app, user, org, scopes, grant_type)
    return issue_token_response(
        state,
        grant,
        include_scope=False,
        include_id_token=False,
        introspectable=False,
    )


# ---------------------------------------------------------------------- client
# credentials
def _client_credentials(call: _Call, grant_type: str) -> Body:
    state = call.state
    if not call.ctx.allows_client_credentials:
        raise OAuthError("invalid_grant", "request not supported on this domain")
    app = call.client(secret_required=True)
    user = state.user(app.client_credential_user)
    if not app.is_client_credential_enabled or user is None:
        raise OAuthError("invalid_grant", "no client credentials user enabled")
    org = state.org_of(user)
    if call.ctx.org is not None and call.ctx.org.name != org.name:
        raise OAuthError("invalid_grant", "no client credentials user enabled")
    check_user(org, user)
    check_app_access(app, user, org, admin_approval=False)
    scopes = tuple(
        s for s in app.scopes if s not in ("refresh_token", "offline_access", "openid")
    )
    requested = call.params.get("scope")
    if requested:
        scopes = (
            tuple(s for s in resolve_scopes(app, requested) if s in scopes) or scopes
        )
    grant = call.grant(app, user, org, scopes, grant_type)
    return issue_token_response(state, grant, include_id_token=False)


# ---------------------------------------------------------------------- JWT bearer
def _numeric(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _jwt_audiences(state: EmulatorState, call: _Call, org_name: str) -> set[str]:
    org = state.orgs[org_name]
    allowed = {f"https://{org.login_host}"}
    if org.site_url:
        allowed.add(org.site_url)
    if org.jwt_my_domain_audience:
        allowed.add(org.my_domain_url)
        if (
            call.ctx.kind == "loopback"
            and call.ctx.org
            and call.ctx.org.name == org_name
        ):
            allowed.add(call.ctx.origin)
            allowed.add(call.ctx.base_url)
    return allowed


def _jwt_bearer(call: _Call, grant_type: str) -> Body:
    state = call.state
    assertion = call.params.get("assertion") or ""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    app = state.app_by_client_id(str(unverified.get("iss") or ""))
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if call.params.get("client_secret") or call.authorization:
        # No client authentication is needed (the assertion identifies the app),
        # but jsforce sends client_id/client_secret with every grant: a secret that
        # is sent is checked (reference 13 item 5).
        sender, verified = identify_client(
            state, call.params, call.authorization, client_id=app.client_id
        )
        if verified and sender is not app:
            raise OAuthError("invalid_client", "invalid client credentials")
    if not app.installed:
        raise OAuthError(*JWT_NOT_INSTALLED)
    if header.get("alg") != "RS256" or not app.certificate_pem:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        public_key = verification_key(app.certificate_pem)
    except ValueError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    exp = _numeric(claims.get("exp"))
    if exp is None:
        raise OAuthError("invalid_grant", "invalid assertion")
    if exp <= state.now():
        raise OAuthError("invalid_grant", "expired authorization code")
    username = claims.get("prn") or claims.get("sub")
    user = state.user(str(username) if username else None)
    if user is None:
        raise OAuthError("invalid_grant", "invalid assertion")
    org = state.org_of(user)
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    allowed = _jwt_audiences(state, call, org.name)
    if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    check_user(org, user)
    approved = (
        user.username in app.admin_approved_users
        or (user.username, app.client_id) in state.approvals
    )
    check_app_access(app, user, org, not_installed=JWT_NOT_INSTALLED)
    if not approved:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    scopes = tuple(
        s for s in app.scopes if s not in ("refresh_token", "offline_access")
    )
    issuer = call.ctx.base_url
    grant = Grant(
        app, user, org, scopes, issuer, call.ctx.instance_url(org), grant_type
    )
    return issue_token_response(
        state,
        grant,
        include_signature=app.jwt_include_signature,
        include_issued_at=app.jwt_include_issued_at,
        include_id_token=False,
    )


# ---------------------------------------------------------------------- asset token
#: Reference 15.8: Salesforce refuses longer subject tokens.
MAX_SUBJECT_TOKEN_LENGTH = 10_000


def _token_exchange(call: _Call, grant_type: str) -> Body:
    """One grant URN, two flows (reference 15.8): an ``actor_token``, or a subject token
    that is one of the org's own access tokens for an asset-token app, is the asset
    token flow (4.6); anything else is an exchange of another identity provider's
    token."""
    state = call.state
    subject = call.params.get("subject_token") or ""
    own = state.access_tokens.get(subject)
    own_app = state.app_by_client_id(own.client_id) if own else None
    if not call.params.get("actor_token") and not (
        own_app is not None and own_app.asset_token is not None
    ):
        return _idp_token_exchange(call, grant_type)
    return _asset_token(call, grant_type)


def _idp_token_exchange(call: _Call, grant_type: str) -> Body:
    state = call.state
    if not call.ctx.allows_client_credentials:  # My Domain or site hosts only
        raise OAuthError("invalid_request", "request not supported on this domain")
    app, verified = identify_client(state, call.params, call.authorization)
    config = app.token_exchange
    if config is None:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    if config.is_secret_required and not verified:
        raise OAuthError("invalid_client", "invalid client credentials")
    subject = call.params.get("subject_token") or ""
    if not subject or len(subject) > MAX_SUBJECT_TOKEN_LENGTH:
        raise OAuthError("invalid_request", "invalid subject token")
    subject_type = call.params.get("subject_token_type") or ""
    if subject_type not in config.subject_token_types:
        raise OAuthError("invalid_request", "invalid subject token type")
    handler = call.params.get("token_handler")
    if handler and config.handler and handler != config.handler:
        raise OAuthError("invalid_request", "invalid token handler")
    username = config.subjects.get(subject)
    if username is None and config.map_subject is not None:
        username = config.map_subject(subject, subject_type)
    user = state.user(username)
    if user is None:
        raise OAuthError("invalid_grant", "invalid subject token")
    org = state.org_of(user)
    if call.ctx.org is not None and call.ctx.org.name != org.name:
        raise OAuthError("invalid_grant", "invalid subject token")
    check_user(org, user)
    check_app_access(app, user, org)
    scopes = resolve_scopes(app, call.params.get("scope"))
    grant = call.grant(app, user, org, scopes, grant_type)
    return issue_token_response(state, grant, refresh=wants_refresh(scopes))


def _asset_token(call: _Call, grant_type: str) -> Body:
    state = call.state
    if call.params.get("subject_token_type") != ACCESS_TOKEN_TYPE:
        raise OAuthError("invalid_request", "invalid subject token type")
    subject = state.access_tokens.get(call.params.get("subject_token") or "")
    if subject is None or subject.revoked or subject.expires_at <= state.now():
        raise OAuthError("invalid_grant", "invalid subject token")
    app = state.app_by_client_id(subject.client_id)
    if call.params.get("client_id") or call.authorization:
        app, _ = identify_client(state, call.params, call.authorization)
    if app is None or app.asset_token is None:
        raise OAuthError("invalid_grant", "asset token not enabled for this app")
    actor_claims: dict[str, Any] = {}
    actor = call.params.get("actor_token")
    if actor:
        if call.params.get("actor_token_type", JWT_TOKEN_TYPE) != JWT_TOKEN_TYPE:
            raise OAuthError("invalid_request", "invalid actor token type")
        try:
            # Reference 4.6: the actor token's signature rules are unknown; not checked.
            actor_claims = jwt.decode(actor, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid actor token") from None
    user = state.user(subject.username)
    if user is None:
        raise OAuthError("invalid_grant", "invalid subject token")
    org = state.org_of(user)
    config = app.asset_token
    now = int(state.now())
    claims: dict[str, Any] = {
        # Reference 13.1: iss names the host (site or My Domain) that issued the token.
        "iss": call.ctx.base_url,
        "sub": user.user_id,
        "aud": config.audiences if len(config.audiences) != 1 else config.audiences[0],
        "iat": now,
        "nbf": now,
        "exp": now + int(config.validity),
        "jti": secrets.token_hex(16),
        "orgId": org.org_id,
        "userId": user.user_id,
        "clientId": app.client_id,
    }
    for name in ("did", "Name", "cnf", "Asset"):
        if name in actor_claims:
            claims[name] = actor_claims[name]
    token = sign_jwt(claims, cached_private_key("asset-token"), config.kid)
    return {
        "access_token": token,
        "issued_token_type": JWT_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": int(config.validity),
    }


# ---------------------------------------------------------------------- device flow
def _device_code(call: _Call) -> Body:
    state = call.state
    app, _ = identify_client(state, call.params, call.authorization)
    if not app.is_device_flow_enabled:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    scopes = resolve_scopes(app, call.params.get("scope"))
    now = state.now()
    user_code = new_user_code()
    raw = f"{app.client_id};{call.client_ip};{int(now * 1000)};{user_code}"
    device_code = base64.b64encode(raw.encode() + secrets.token_bytes(4)).decode()
    org = call.ctx.org or state.orgs[state.default_org]
    state.devices[device_code] = DeviceRecord(
        device_code=device_code,
        user_code=user_code,
        client_id=app.client_id,
        scopes=scopes,
        created=now,
        issuer=call.ctx.base_url,
        instance_url=call.ctx.instance_url(org),
    )
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": f"{call.ctx.base_url}/setup/connect",
        "interval": app.device_interval,
    }


def _device(call: _Call, grant_type: str) -> Body:
    state = call.state
    app, _ = identify_client(state, call.params, call.authorization)
    record = state.devices.get(call.params.get("code") or "")
    if record is None or record.client_id != app.client_id or record.status == "used":
        raise OAuthError("invalid_grant", "invalid device code")
    now = state.now()
    lifetime = app.device_code_lifetime
    if lifetime is not None and now > record.created + lifetime:
        raise OAuthError("expired_token", "device code expired")
    if record.status == "denied":
        owner = state.user(record.username) if record.username else None
        org = state.org_of(owner) if owner else state.orgs.get(state.default_org)
        denied = org.access_denied_error if org else EmulatedOrg.access_denied_error
        raise OAuthError(*denied)
    if record.status == "pending":
        too_fast = (
            app.device_slow_down
            and record.last_poll is not None
            and now - record.last_poll < app.device_interval
        )
        record.last_poll = now
        if too_fast:
            raise OAuthError("slow_down", "slow down")
        raise OAuthError("authorization_pending", "authorization pending")
    user = state.user(record.username)
    if user is None:
        raise OAuthError("invalid_grant", "invalid device code")
    org = state.org_of(user)
    check_user(org, user)
    check_app_access(app, user, org)
    record.status = "used"
    # instance_url is the approving user's org (on a loopback host: the base URL).
    loopback = record.instance_url == record.issuer
    instance_url = record.instance_url if loopback else org.my_domain_url
    grant = Grant(
        app, user, org, record.scopes, record.issuer, instance_url, grant_type
    )
    return issue_token_response(state, grant, refresh=wants_refresh(record.scopes))


GRANTS: dict[str, Callable[[_Call, str], Body]] = {
    "authorization_code": _authorization_code,
    "hybrid_auth_code": _authorization_code,
    "refresh_token": _refresh,
    "hybrid_refresh": _refresh,
    "password": _password,
    "client_credentials": _client_credentials,
    JWT_BEARER_GRANT: _jwt_bearer,
    TOKEN_EXCHANGE_GRANT: _token_exchange,
    "device": _device,
}


def handle_token_request(
    state: EmulatorState,
    ctx: HostContext,
    params: Params,
    authorization: str | None = None,
    client_ip: str = "127.0.0.1",
) -> Body:
    """Run one token request (takes ``state.lock``).

    Raises:
        OAuthError: the error to answer.
    """
    with state.lock:
        call = _Call(state, ctx, params, authorization, client_ip)
        grant_type = params.get("grant_type")
        if not grant_type and params.get("response_type") == "device_code":
            return _device_code(call)
        handler = GRANTS.get(grant_type or "")
        if handler is None:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        return handler(call, grant_type or "")


async def token_endpoint(request: Request) -> Response:
    """``/services/oauth2/token``."""
    state = emulator_state(request)
    ctx = host_context(request)
    params = await read_params(request)
    fmt = response_format(params, request.headers.get("accept"))
    if request.method != "POST":
        return oauth_error_response(
            OAuthError("invalid_request", "must use HTTP POST"), fmt
        )
    client_ip = request.client.host if request.client else "127.0.0.1"
    try:
        async with _refresh_slot(state, params):
            body = handle_token_request(
                state, ctx, params, request.headers.get("authorization"), client_ip
            )
    except OAuthError as exc:
        return oauth_error_response(exc, fmt)
    return oauth_response(body, fmt)


@asynccontextmanager
async def _refresh_slot(state: EmulatorState, params: Params) -> AsyncIterator[None]:
    """Reference 15.1: Salesforce processes one refresh per refresh token at a time; a
    refresh that arrives while another with the same token is processed is refused
    with ``invalid_grant`` / ``expired authorization code``. The processing takes
    the app's ``refresh_processing_seconds``."""
    value = params.get("refresh_token") or ""
    if params.get("grant_type") not in ("refresh_token", "hybrid_refresh") or not value:
        yield
        return
    with state.lock:
        if value in state.refreshes_in_flight:
            state.concurrent_refresh_rejections += 1
            raise OAuthError(*_REFRESH_IN_PROGRESS)
        record = state.refresh_tokens.get(value)
        app = state.app_by_client_id(record.client_id) if record else None
        seconds = app.refresh_processing_seconds if app else 0.0
        state.refreshes_in_flight.add(value)
    try:
        if seconds > 0:
            await anyio.sleep(seconds)
        yield
    finally:
        with state.lock:
            state.refreshes_in_flight.discard(value)
