"""OpenID Connect UserInfo.

Specs: OpenID Connect Core 1.0 §5.3 (UserInfo endpoint), RFC 6750 §2.1 (bearer header).
Salesforce: "OpenID Connect UserInfo Endpoint" (help topic
``remoteaccess_using_userinfo_endpoint``; Postman "User Info"); reference section 7.

Salesforce specifics: ``GET /services/oauth2/userinfo`` with ``Authorization: Bearer``;
the Salesforce CLI calls it on the token's ``instance_url`` right after a login, and so
do we (falling back to the login URL, which keeps an Experience Cloud site's path). The
answer is OIDC claims plus Salesforce extras (``user_id``, ``organization_id``,
``urls``...). The host is checked before anything is yielded: a bearer token is
never sent to a foreign host (SECURITY.md item 9). The error format is undocumented:
401/403 become :class:`~sfoauth_core.exceptions.InvalidTokenError` whatever the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import ConnectedApp
from ..exceptions import FlowError, InvalidTokenError
from ..tokens import Token
from ._base import (
    Flow,
    HttpRequest,
    HttpResponse,
    RetryPolicy,
    grant_endpoints,
    parse_json_object,
    send_with_retries,
)
from .discovery import DEFAULT_READ_RETRY, ensure_trusted_url
from .endpoints import endpoints_for
from .revoke import parse_error_body

__all__ = [
    "access_token_of",
    "bearer_get",
    "parse_bearer_response",
    "prepare_bearer_request",
    "userinfo",
]


def access_token_of(token: Token | str) -> str:
    """The access token of a :class:`Token` or a bare string.

    Raises:
        FlowError: it is empty.
    """
    value = token.access_token if isinstance(token, Token) else token
    if not isinstance(value, str) or not value:
        raise FlowError("an access token is required")
    return value


def prepare_bearer_request(
    app: ConnectedApp,
    url: str,
    access_token: str,
    *,
    what: str,
    params: Mapping[str, str] | None = None,
) -> HttpRequest:
    """A GET with ``Authorization: Bearer``, only to a trusted host (checked here).

    Raises:
        UntrustedHostError: the URL is not https on a trusted host.
    """
    ensure_trusted_url(app, url, what=what)
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    return HttpRequest(
        "GET", url, headers=headers, params=dict(params) if params else None
    )


def _clean(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:limit]


def parse_bearer_response(response: HttpResponse) -> dict[str, Any]:
    """Decode a bearer-protected JSON answer; 401/403 mean the token is not accepted.

    Raises:
        InvalidTokenError: HTTP 401 or 403 (body JSON, urlencoded or plain text such as
            ``Bad_OAuth_Token``), with ``status_code`` set.
        OAuthProtocolError: another error body.
        MalformedResponseError: not a JSON object.
    """
    status = response.status_code
    if status in (401, 403):
        payload = parse_error_body(response)
        if payload is not None:
            description = payload.get("error_description") or payload.get("error")
        else:
            description = response.content.decode("utf-8", "replace").strip()
            if description.startswith(("<", "[")):
                description = ""
        raise InvalidTokenError(
            "invalid_token",
            _clean(str(description)) or f"access token refused (HTTP {status})",
            status_code=status,
        )
    return parse_json_object(response)


def bearer_get(
    app: ConnectedApp,
    url: str,
    access_token: str,
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[dict[str, Any]]:
    """GET a JSON object with a bearer token (host checked before the first yield)."""
    request = prepare_bearer_request(app, url, access_token, what=what, params=params)
    response = yield from send_with_retries(lambda: request, retry)
    return parse_bearer_response(response)


def userinfo(
    app: ConnectedApp,
    token: Token | str,
    *,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[dict[str, Any]]:
    """Fetch the OpenID Connect UserInfo claims for a token.

    The endpoint is the one of the authorization server that issued the token
    (:attr:`Token.token_url`'s host: a sandbox login's ``test.salesforce.com``, a My
    Domain, a site), as the OpenID discovery document names it; for a token stored
    before that was recorded, ``<token.instance_url>/services/oauth2/userinfo``; for a
    bare string, under ``app.login_url``.

    Returns:
        The claims as Salesforce sent them.

    Raises:
        UntrustedHostError: the endpoint is not on a trusted host (nothing is sent).
        InvalidTokenError: Salesforce refused the token (401/403).
        MalformedResponseError: the answer is not a JSON object.
    """
    access_token = access_token_of(token)
    if isinstance(token, Token) and token.token_url:
        url = grant_endpoints(app, token).userinfo
    else:
        base = (
            token.instance_url if isinstance(token, Token) else None
        ) or app.login_url
        url = endpoints_for(base).userinfo
    return (
        yield from bearer_get(app, url, access_token, what="userinfo URL", retry=retry)
    )
