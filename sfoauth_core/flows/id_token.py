"""OpenID Connect ID token validation for Salesforce logins.

Specs: OpenID Connect Core 1.0 §3.1.3.7 (ID token validation), RFC 7519, RFC 8725 (JWT BCP).
Salesforce: "OpenID Connect" and "ID Token" help topics; reference section 2.4 (RS256, ``kid``
in ``/id/keys``, ``iss`` the login host or My Domain, ``aud`` the consumer key, ``sub`` the
identity URL, default validity 2 minutes).

The signature, ``iss``, ``aud``, ``exp`` and ``nbf`` are checked by
:func:`~sfoauth_core.flows.jwks.verify_jwt` (keys only from the login host's JWKS, RS256 only);
this module adds the OpenID checks: ``nonce`` bound to the pending login, and ``sub`` equal to
the token's identity URL.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, MutableMapping
from typing import Any

from ..config import ConnectedApp
from ..exceptions import FlowError, SignatureError
from ..tokens import Token
from ._base import Flow
from .endpoints import endpoints_for
from .jwks import verify_jwt

__all__ = ["verify_id_token"]


def verify_id_token(
    app: ConnectedApp,
    token: Token,
    *,
    nonce: str | None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
    issuer: str | None = None,
    leeway: float = 60,
) -> Flow[dict[str, Any]]:
    """Verify ``token.id_token`` and return its claims.

    Args:
        token: a token from the web server, user-agent, refresh or device flow.
        nonce: the ``nonce`` sent on the authorization request (kept server-side); when
            given, the ID token must carry exactly this value.
        issuer: the expected ``iss``; default the app's login URL (the host that handled
            the login, which Salesforce names as issuer).

    Raises:
        FlowError: the token has no ID token (``openid`` was not granted).
        SignatureError: signature, issuer, audience, expiry, nonce or subject is wrong.
    """
    if not token.id_token:
        raise FlowError("the token has no id_token: request the openid scope")
    expected_issuer = (issuer or app.login_url).rstrip("/")
    claims = yield from verify_jwt(
        app,
        token.id_token,
        audience=app.client_id,
        issuer=expected_issuer,
        jwks_cache=jwks_cache,
        keys_url=endpoints_for(expected_issuer).keys,  # the issuer's own key set
        leeway=leeway,
    )
    if nonce is not None:
        received = claims.get("nonce")
        if not isinstance(received, str) or not hmac.compare_digest(
            received.encode(), nonce.encode()
        ):
            raise SignatureError(
                "the ID token's nonce does not match the login request"
            )
    if token.id_url and claims.get("sub") != token.id_url:
        raise SignatureError("the ID token's subject is not the token's identity URL")
    return claims
