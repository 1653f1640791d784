"""The remaining paths of reference 1.2: dynamic client registration, the
Salesforce-hosted callback pages and the legacy SOAP ``login()``.

- ``POST /services/oauth2/register``: OIDC dynamic client registration (RFC 7591) with
  ``Authorization: Bearer <initial access token>``; any active access token issued by
  the emulator serves as the initial access token (Salesforce's exact rule was not
  researched). The new client becomes an :class:`~.state.EmulatedApp`.
- ``/services/oauth2/success`` and ``/services/oauth2/echo``: the pages Salesforce hosts
  as redirect URIs for user-agent and headless clients; they show a short page (the
  tokens stay in the URL, for the client to read).
- ``POST /services/Soap/u/<version>``: the partner API ``login()`` call (not OAuth; in
  the Postman collection's Auth folder): a session id usable on the REST stub, or an
  ``INVALID_LOGIN`` fault.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from html import unescape
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from .crypto import new_access_token
from .state import AccessTokenRecord, EmulatedApp
from .tokens import id_url_for
from .vhosts import emulator_state, host_context
from .wire import NO_CACHE_HEADERS, oauth_response

__all__ = ["oauth_page", "register", "soap_login"]

_DEFAULT_REGISTERED_SCOPES = ["api", "refresh_token", "openid", "id"]


def _registration_error(error: str, description: str, status: int = 400) -> Response:
    body = {"error": error, "error_description": description}
    return oauth_response(body, "json", status)


def _string_list(value: object) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


async def register(request: Request) -> Response:
    """``POST /services/oauth2/register`` (RFC 7591)."""
    state = emulator_state(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    with state.lock:
        record = state.access_tokens.get(token) if scheme.lower() == "bearer" else None
        authorized = (
            record is not None
            and not record.revoked
            and record.expires_at > state.now()
        )
    if not authorized:
        response = _registration_error(
            "invalid_token", "initial access token is missing or invalid", 401
        )
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    try:
        metadata = json.loads(await request.body() or b"{}")
    except ValueError:
        return _registration_error("invalid_client_metadata", "invalid JSON body")
    if not isinstance(metadata, dict):
        return _registration_error("invalid_client_metadata", "invalid JSON body")
    redirect_uris = _string_list(metadata.get("redirect_uris"))
    grant_types = _string_list(metadata.get("grant_types", ["authorization_code"]))
    response_types = _string_list(metadata.get("response_types", ["code"]))
    contacts = _string_list(metadata.get("contacts"))
    if grant_types is None or response_types is None or contacts is None:
        return _registration_error("invalid_client_metadata", "invalid client metadata")
    if not redirect_uris:
        return _registration_error("invalid_redirect_uri", "redirect_uris is required")
    scope = metadata.get("scope")
    scopes = (
        scope.split() if isinstance(scope, str) and scope.strip() else None
    ) or list(_DEFAULT_REGISTERED_SCOPES)
    alphabet = string.ascii_letters + string.digits
    client_id = "3MVG9" + "".join(secrets.choice(alphabet) for _ in range(80))
    client_secret = secrets.token_hex(32).upper()
    method = metadata.get("token_endpoint_auth_method") or "client_secret_basic"
    with state.lock:
        issued_at = int(state.now())
        name = f"registered-{len(state.apps) + 1}-{secrets.token_hex(3)}"
        state.apps[name] = EmulatedApp(
            name=name,
            client_id=client_id,
            client_secret=client_secret,
            callback_urls=list(redirect_uris),
            scopes=scopes,
        )
    body: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": client_secret,
        "client_id_issued_at": issued_at,
        "client_secret_expires_at": 0,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": method,
    }
    for key in ("client_name", "application_type"):
        if isinstance(metadata.get(key), str):
            body[key] = metadata[key]
    if contacts:
        body["contacts"] = contacts
    return oauth_response(body, "json", 201)


async def oauth_page(request: Request) -> Response:
    """``/services/oauth2/success`` and ``/services/oauth2/echo``."""
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>Remote Access Application Authorization</title></head><body>"
        "<p>Remote Access Application Authorization</p>"
        "<p>You have successfully authorized this application.</p></body></html>"
    )
    return HTMLResponse(html, headers=dict(NO_CACHE_HEADERS))


_SOAP_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)
_INVALID_LOGIN = "Invalid username, password, security token; or user locked out."


def _soap_value(envelope: str, name: str) -> str | None:
    # A regular expression, not an XML parser: the envelope is untrusted and only two
    # text values are needed.
    match = re.search(
        rf"<(?:[\w.-]+:)?{name}(?:\s[^>]*)?>(.*?)</(?:[\w.-]+:)?{name}>",
        envelope,
        re.DOTALL,
    )
    return unescape(match.group(1)) if match else None


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<soapenv:Fault><faultcode xmlns:sf="urn:fault.partner.soap.sforce.com">'
        f"sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault>"
    )
    return Response(
        _SOAP_ENVELOPE.format(body=body),
        status_code=500,
        media_type="text/xml;charset=UTF-8",
    )


async def soap_login(request: Request) -> Response:
    """``POST /services/Soap/u/<version>``: the partner ``login()`` call."""
    state = emulator_state(request)
    ctx = host_context(request)
    version = request.path_params["version"]
    envelope = (await request.body()).decode("utf-8", "replace")
    username = _soap_value(envelope, "username")
    password = _soap_value(envelope, "password") or ""
    with state.lock:
        user = state.user(username)
        if user is None or not ctx.accepts_org(state.org_of(user)):
            return _soap_fault("INVALID_LOGIN", _INVALID_LOGIN)
        org = state.org_of(user)
        accepted = {user.password + user.security_token}
        if user.trusted_ip:
            accepted.add(user.password)
        if password not in accepted or not user.active or not org.active:
            return _soap_fault("INVALID_LOGIN", _INVALID_LOGIN)
        if user.ip_restricted:
            return _soap_fault(
                "LOGIN_MUST_USE_SECURITY_TOKEN", "IP restricted or invalid login hours"
            )
        now = state.now()
        instance_url = ctx.instance_url(org)
        session_id = new_access_token(org.org_id)
        timeout = int(org.session_timeout)
        state.access_tokens[session_id] = AccessTokenRecord(
            value=session_id,
            client_id="",
            username=user.username,
            org=org.name,
            scopes=("api", "web", "full"),
            id_url=id_url_for(ctx.base_url, org, user),
            instance_url=instance_url,
            issued_at=now,
            expires_at=now + timeout,
            grant="soap",
            introspectable=False,
        )
    org15 = org.org_id[:15]
    result = (
        "<loginResponse><result>"
        f"<metadataServerUrl>{instance_url}/services/Soap/m/{version}/{org15}"
        "</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired>"
        f"<sandbox>{'true' if org.is_sandbox else 'false'}</sandbox>"
        f"<serverUrl>{instance_url}/services/Soap/u/{version}/{org15}</serverUrl>"
        f"<sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{user.user_id}</userId>"
        "<userInfo>"
        f"<organizationId>{org.org_id}</organizationId>"
        f"<sessionSecondsValid>{timeout}</sessionSecondsValid>"
        f"<userEmail>{escape(user.email)}</userEmail>"
        f"<userFullName>{escape(user.display_name)}</userFullName>"
        f"<userId>{user.user_id}</userId>"
        f"<userName>{escape(user.username)}</userName>"
        "</userInfo></result></loginResponse>"
    )
    return Response(
        _SOAP_ENVELOPE.format(body=result), media_type="text/xml;charset=UTF-8"
    )
