"""Token introspection.

Specs: RFC 7662 (OAuth 2.0 Token Introspection).
Salesforce: "OpenID Connect Token Introspection Endpoint" (help topic
``remoteaccess_oidc_token_introspection_endpoint``; Postman collection); reference
section 6.

Salesforce specifics: ``POST /services/oauth2/introspect`` with ``token``,
``token_type_hint`` (``access_token`` | ``refresh_token``) and client authentication
(``client_id`` + ``client_secret`` in the body), ``Accept: application/json``. An app
can only introspect its own tokens unless "introspect all tokens" is on; password-flow
tokens are not introspectable. ``token_type`` in the answer is
``access_token``/``refresh_token``, not ``Bearer``. ``exp``/``iat``/``nbf`` are taken as
epoch seconds (RFC 7662; unverified for Salesforce), and a 13-digit value is read as
milliseconds, as ``issued_at`` is elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import ConnectedApp
from ..exceptions import ConfigurationError, FlowError, MalformedResponseError
from ..tokens import Introspection, Token, masked
from ._base import (
    Flow,
    HttpResponse,
    RetryPolicy,
    client_auth_fields,
    grant_endpoints,
    parse_json_object,
    prepare_token_request,
    send_with_retries,
)
from .discovery import ensure_trusted_url

__all__ = [
    "DEFAULT_INTROSPECT_RETRY",
    "TOKEN_TYPE_HINTS",
    "introspect_token",
    "parse_introspection",
    "prepare_introspection_form",
]

TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})
DEFAULT_INTROSPECT_RETRY = RetryPolicy(attempts=3)

_STRING_FIELDS = ("client_id", "username", "sub", "token_type")
_TIME_FIELDS = ("exp", "iat", "nbf")
_KNOWN = frozenset({"active", "scope", *_STRING_FIELDS, *_TIME_FIELDS})
# Anything from 10**11 on is far beyond any epoch-seconds date we meet: milliseconds.
_MILLISECONDS_FROM = 10**11


def prepare_introspection_form(
    app: ConnectedApp, token: Token | str, hint: str = "access_token"
) -> dict[str, str]:
    """The introspection form body (token, hint, client id and secret).

    Raises:
        ConfigurationError: unknown ``hint``, or no client secret (client auth is
            required).
        FlowError: the :class:`Token` has no token of the hinted type.
    """
    if hint not in TOKEN_TYPE_HINTS:
        raise ConfigurationError("hint", "must be 'access_token' or 'refresh_token'")
    if not app.client_secret:
        raise ConfigurationError(
            "client_secret",
            "is required for token introspection (client authentication)",
        )
    if isinstance(token, Token):
        value = token.refresh_token if hint == "refresh_token" else token.access_token
    else:
        value = token
    if not isinstance(value, str) or not value:
        raise FlowError(f"there is no {hint.replace('_', ' ')} to introspect")
    form = {"token": masked(value), "token_type_hint": hint}
    form.update(client_auth_fields(app))
    return form


def _epoch(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedResponseError(f"introspection field {name!r} is not a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise MalformedResponseError(f"introspection field {name!r} is not a number")
    return value // 1000 if value >= _MILLISECONDS_FROM else value


def parse_introspection(response: HttpResponse) -> Introspection:
    """Decode an introspection answer.

    Raises:
        OAuthProtocolError: (a subclass) an OAuth error body (e.g. ``invalid_client``).
        MalformedResponseError: ``active`` missing or not a boolean, or a field of the
            wrong type.
    """
    payload = parse_json_object(response)
    active = payload.get("active")
    if not isinstance(active, bool):
        raise MalformedResponseError("introspection response has no boolean 'active'")
    raw = {k: v for k, v in payload.items() if k not in _KNOWN}
    if not active:
        return Introspection(active=False, raw=raw)
    scope = payload.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise MalformedResponseError("introspection field 'scope' is not a string")
    strings: dict[str, str | None] = {}
    for name in _STRING_FIELDS:
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedResponseError(
                f"introspection field {name!r} is not a string"
            )
        strings[name] = value
    return Introspection(
        active=True,
        scopes=tuple(scope.split()) if scope else (),
        client_id=strings["client_id"],
        username=strings["username"],
        sub=strings["sub"],
        token_type=strings["token_type"],
        exp=_epoch(payload, "exp"),
        iat=_epoch(payload, "iat"),
        nbf=_epoch(payload, "nbf"),
        raw=raw,
    )


def introspect_token(
    app: ConnectedApp,
    token: Token | str,
    *,
    hint: str = "access_token",
    introspect_url: str | None = None,
    retry: RetryPolicy = DEFAULT_INTROSPECT_RETRY,
) -> Flow[Introspection]:
    """Ask Salesforce whether a token is active, and learn its scopes and expiry.

    Args:
        token: a :class:`Token` (the hinted token is sent; it is introspected at the
            authorization server that issued it) or a bare token (at the app's
            ``login_url``).
        hint: ``access_token`` (default) or ``refresh_token``.
        introspect_url: another introspection endpoint (trusted host only).
        retry: retries for 5xx/429/timeouts (introspection is a read).

    Returns:
        ``Introspection(active=False)`` for an unknown, expired or revoked token.

    Raises:
        ConfigurationError: bad ``hint`` or no client secret.
        InvalidClientError: the client credentials were refused.
    """
    form = prepare_introspection_form(app, token, hint)
    url = introspect_url or grant_endpoints(app, token).introspect
    ensure_trusted_url(app, url, what="introspection URL")
    response = yield from send_with_retries(
        lambda: prepare_token_request(url, form), retry
    )
    return parse_introspection(response)
