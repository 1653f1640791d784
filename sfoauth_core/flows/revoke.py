"""Token revocation.

Specs: RFC 7009 (OAuth 2.0 Token Revocation).
Salesforce: "Revoke OAuth Tokens" (help topic ``remoteaccess_revoke_token``); reference
section 5. SECURITY.md item 19.

Salesforce specifics: ``POST /services/oauth2/revoke`` with the form body ``token=...``
on any login host; 200 with an empty body on success; 400 with ``invalid_token`` or
``unsupported_token_type`` otherwise. Revoking a refresh token also revokes every access
token issued from it, so a :class:`~sfoauth_core.tokens.Token` is revoked through its
refresh token when it has one. The GET form (``?token=``) exists but is never used: a
token must not sit in a URL. The error body format is undocumented (jsforce parses it as
urlencoded), so both JSON and urlencoded bodies are understood. Revocation is
idempotent: 5xx/429/timeouts are retried.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from ..config import ConnectedApp
from ..exceptions import (
    FlowError,
    MalformedResponseError,
    OAuthProtocolError,
    raise_for_oauth_error,
)
from ..tokens import Token, masked
from ._base import (
    Flow,
    HttpResponse,
    RetryPolicy,
    grant_endpoints,
    loads_json,
    prepare_token_request,
    send_with_retries,
)
from .discovery import ensure_trusted_url

__all__ = [
    "DEFAULT_REVOKE_RETRY",
    "parse_error_body",
    "parse_revoke_response",
    "revoke_token",
    "token_to_revoke",
]

DEFAULT_REVOKE_RETRY = RetryPolicy(attempts=3)


def token_to_revoke(token: Token | str) -> str:
    """The value to send: a Token's refresh token (it kills its access tokens too).

    Falls back to the Token's access token; a string is sent as given.

    Raises:
        FlowError: there is nothing to revoke.
    """
    value = (
        (token.refresh_token or token.access_token)
        if isinstance(token, Token)
        else token
    )
    if not isinstance(value, str) or not value:
        raise FlowError("there is no token to revoke")
    return value


def parse_error_body(response: HttpResponse) -> dict[str, Any] | None:
    """An OAuth error body as a dict (JSON or urlencoded); ``None`` if neither."""
    text = response.content.decode("utf-8", "replace").strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            payload = loads_json(text, status_code=response.status_code)
        except MalformedResponseError:
            return None
        return payload if isinstance(payload, dict) and "error" in payload else None
    if text.startswith("<"):
        return None
    pairs = dict(parse_qsl(text, keep_blank_values=True))
    return pairs if "error" in pairs else None


def parse_revoke_response(response: HttpResponse) -> None:
    """Accept a 2xx; raise the typed error for anything else.

    Raises:
        InvalidTokenError: ``invalid_token`` (unknown, expired or already revoked
            token).
        UnsupportedTokenTypeError: ``unsupported_token_type``.
        OAuthProtocolError: another error code, or ``http_<status>`` for a bare failure
            (as jsforce synthesises ``ERROR_HTTP_<status>``).
        MalformedResponseError: an HTML page instead of an answer.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    payload = parse_error_body(response)
    if payload is not None:
        raise_for_oauth_error(payload, status_code=status)
    if response.content_type == "text/html" or response.content.lstrip().startswith(
        b"<"
    ):
        raise MalformedResponseError(
            f"Salesforce answered the revocation with an HTML page (HTTP {status})",
            status_code=status,
        )
    raise OAuthProtocolError(f"http_{status}", "revocation failed", status_code=status)


def revoke_token(
    app: ConnectedApp,
    token: Token | str,
    *,
    token_url: str | None = None,
    retry: RetryPolicy = DEFAULT_REVOKE_RETRY,
) -> Flow[None]:
    """Revoke a token at Salesforce (POST, token in the body, never in the URL).

    Args:
        token: a :class:`Token` (its refresh token is revoked when present, which also
            kills its access tokens), revoked at the authorization server that issued
            it (:attr:`Token.token_url`'s host), or a bare access/refresh token.
        token_url: the revocation endpoint to use (must be a trusted host); default
            the token's authorization server's, else ``<login_url>/services/oauth2/revoke``.
        retry: retries for 5xx/429/timeouts (revocation is idempotent).

    Raises:
        InvalidTokenError, UnsupportedTokenTypeError: Salesforce refused the token.
        SalesforceUnavailableError: 5xx/429/timeouts after ``retry.attempts``.
    """
    form = {"token": masked(token_to_revoke(token))}
    url = token_url or grant_endpoints(app, token).revoke
    ensure_trusted_url(app, url, what="revoke URL")
    response = yield from send_with_retries(
        lambda: prepare_token_request(url, form), retry
    )
    parse_revoke_response(response)
