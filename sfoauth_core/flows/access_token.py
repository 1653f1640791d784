"""JWT-format access tokens: verify one locally and learn its expiry (reference 15.9).

Apps can issue JWT-based access tokens ("isNamedUserJwtEnabled"; required by Salesforce's
hosted MCP servers). Unlike opaque tokens they say when they expire (``exp``), so the
token manager can refresh *before* the expiry instead of after a ``401``. The claim is
only believed after the signature verifies against the issuing org's key set
(``<issuer>/id/keys``, through the client's rate-limited :class:`~.jwks.JwksCache`):
a token that does not verify (forged, signed with a foreign key, another issuer) is
*not trusted for its expiry*; the manager then falls back to what it does for opaque
tokens and logs a warning (the token is not dropped: Salesforce, not the client,
decides whether it is valid for the API).

Checks (by :func:`~.jwks.verify_jwt`): RS256 only, the ``kid`` in the issuer's key set,
``iss`` equal to the issuer of the token (the origin of its identity URL), ``exp``
present, ``aud`` one of the token's instance URL, the issuer or the consumer key.
Salesforce documents the claims (``iss``, ``sub``, ``aud``, ``exp``, ``nbf``, ``scp``,
``client_id``) but not their exact values; the audience rule is deliberately lenient and
the signature is what makes the expiry trustworthy.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from ..config import ConnectedApp
from ..exceptions import SignatureError
from ..tokens import Token
from ._base import Flow
from .endpoints import endpoints_for
from .jwks import verify_jwt

__all__ = ["access_token_issuer", "is_jwt_access_token", "verify_access_token"]


def is_jwt_access_token(value: str) -> bool:
    """True when ``value`` has the shape of a compact JWS (opaque Salesforce tokens look
    like ``00D…!AQ…`` and never contain two dots)."""
    return value.startswith("eyJ") and value.count(".") == 2


def access_token_issuer(token: Token) -> str | None:
    """The issuer of ``token``: the origin (plus site path) of its identity URL."""
    if not token.id_url or "/id/" not in token.id_url:
        return None
    return token.id_url.split("/id/", 1)[0].rstrip("/") or None


def verify_access_token(
    app: ConnectedApp,
    token: Token,
    *,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
) -> Flow[dict[str, Any]]:
    """Verify a JWT-format access token and return its claims.

    Args:
        token: a token whose ``access_token`` is a JWT.
        jwks_cache: the client's key set cache.

    The signature, issuer and audience are checked; ``exp`` must be present but an
    expired token is *not* refused: its ``exp`` is what the caller wants to learn (an
    already expired token is renewed at once).

    Raises:
        SignatureError: not a JWT, no issuer known, or any check failed (the message
            never contains the token).
        UntrustedHostError: the issuer is not a trusted Salesforce host.
    """
    if not is_jwt_access_token(token.access_token):
        raise SignatureError("the access token is not a JWT")
    issuer = access_token_issuer(token)
    if issuer is None:
        raise SignatureError("the token has no identity URL naming its issuer")
    audiences = [issuer, app.client_id]
    if token.instance_url:
        audiences.insert(0, token.instance_url.rstrip("/"))
    claims = yield from verify_jwt(
        app,
        token.access_token,
        audience=audiences,
        issuer=issuer,
        jwks_cache=jwks_cache,
        keys_url=endpoints_for(issuer).keys,
        check_times=False,
    )
    return claims
