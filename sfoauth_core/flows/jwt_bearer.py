"""JWT bearer flow: a signed assertion buys an access token, no user present.

Specs: RFC 7523 §2.1 (JWT as an authorization grant) and §3 (assertion claims), RFC 7519
(JWT), RFC 9700 §2.5 (short-lived, single-use assertions). Salesforce: "OAuth 2.0 JWT
Bearer Flow for Server-to-Server Integration" (help topic
``remoteaccess_oauth_jwt_flow``); reference section 4.5.

Salesforce specifics: the body carries only ``grant_type`` and ``assertion`` (the client
is identified by ``iss``, so no ``client_id``/``client_secret``); ``aud`` is
``https://login.salesforce.com``, ``https://test.salesforce.com`` or the Experience
Cloud site URL (:attr:`ConnectedApp.jwt_audience
<sfoauth_core.config.ConnectedApp.jwt_audience>` derives it); ``exp`` must be "within 3
minutes". The answer has no refresh token. A retry after a 5xx or a network error mints
a new assertion (new ``jti``, new ``exp``), so a replayed assertion is never what keeps
a failed call alive (SECURITY.md items 15 and 24).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from ..config import ConnectedApp
from ..exceptions import ConfigurationError
from ..hosts import parse_https_url
from ..tokens import Token, masked
from ._base import (
    Flow,
    HttpRequest,
    RetryPolicy,
    parse_token_response,
    prepare_token_request,
    send_with_retries,
)
from .endpoints import endpoints_for

__all__ = [
    "DEFAULT_JWT_RETRY",
    "GRANT_TYPE",
    "MAX_ASSERTION_LIFETIME",
    "create_assertion",
    "jwt_bearer",
]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Salesforce: the assertion must expire "within 3 minutes".
MAX_ASSERTION_LIFETIME = 180
DEFAULT_JWT_RETRY = RetryPolicy(attempts=3)


def create_assertion(
    app: ConnectedApp,
    *,
    username: str | None = None,
    audience: str | None = None,
    now: float | None = None,
    lifetime: int = MAX_ASSERTION_LIFETIME,
) -> str:
    """Sign a fresh RS256 assertion with the app's private key.

    Claims: ``iss`` = consumer key, ``sub`` = username, ``aud`` = audience,
    integer ``iat`` and ``exp`` (``iat + lifetime``), and a new random ``jti`` on
    every call.

    Args:
        app: the connected app; its ``private_key`` was loaded (and checked for
            >= 2048 bits) when the app was built.
        username: the Salesforce username (``sub``); defaults to ``app.username``.
        audience: the ``aud``; defaults to ``app.jwt_audience`` (login/test/site).
        now: epoch seconds (for tests); ``time.time()`` when ``None``.
        lifetime: seconds until ``exp``, 1 to 180.

    Returns:
        The compact JWS.

    Raises:
        ConfigurationError: no private key, no username, a bad audience URL, or a
            lifetime outside 1-180 seconds.
    """
    key = app.signing_key
    subject = username or app.username
    if not subject:
        raise ConfigurationError(
            "username", "is required for the JWT bearer flow (the assertion's sub)"
        )
    if audience is not None:
        parse_https_url(audience, setting="audience", allow_loopback=app.allow_loopback)
        audience = audience.rstrip("/")
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 0 < lifetime <= MAX_ASSERTION_LIFETIME
    ):
        raise ConfigurationError(
            "lifetime",
            f"must be 1 to {MAX_ASSERTION_LIFETIME} seconds (Salesforce requires the "
            "assertion to expire within 3 minutes)",
        )
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": app.client_id,
        "sub": subject,
        "aud": audience or app.jwt_audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"typ": "JWT"})


def jwt_bearer(
    app: ConnectedApp,
    *,
    username: str | None = None,
    audience: str | None = None,
    retry: RetryPolicy = DEFAULT_JWT_RETRY,
    clock: Callable[[], float] = time.time,
) -> Flow[Token]:
    """Exchange a signed assertion for an access token.

    Each attempt (the first and every retry after a 5xx, 429 or network error) signs a
    new assertion.

    Args:
        app: the connected app with ``private_key`` (and usually ``username``).
        username: overrides ``app.username`` as the ``sub``.
        audience: overrides ``app.jwt_audience`` as the ``aud``.
        retry: bounded retries for 5xx/429/transport errors.
        clock: epoch-seconds clock for ``iat``/``exp`` (for tests).

    Returns:
        The token (no refresh token: Salesforce issues none for this grant).

    Raises:
        ConfigurationError: no private key or username (before any request is made).
        InvalidGrantError: e.g. ``user hasn't approved this consumer`` or an audience
            problem; the error's ``hint`` says what to fix.
        InvalidClientIdError: the consumer key (``iss``) is unknown.
        SalesforceUnavailableError: 5xx/429/timeouts after ``retry.attempts``.
    """
    url = endpoints_for(app.login_url).token

    def make_request() -> HttpRequest:
        assertion = masked(
            create_assertion(app, username=username, audience=audience, now=clock())
        )
        return prepare_token_request(
            url, {"grant_type": GRANT_TYPE, "assertion": assertion}
        )

    response = yield from send_with_retries(make_request, retry)
    return parse_token_response(app, response, grant="jwt_bearer", token_url=url)
