"""JWT-format access tokens (reference 15.9, "JWT-Based Access Tokens").

An app with :attr:`~sfoauth_emulator.state.EmulatedApp.jwt_access_tokens` gets access
tokens that are RS256 JWTs signed with the org's access-token key, whose public half
``/id/keys`` publishes under :data:`ACCESS_TOKEN_KID`. Header: ``alg``, ``typ``,
``kid``, ``tty`` (``sfdc-core-token``), ``tnk`` (tenant key), ``ver``. Claims: ``iss``
(the host that issued the token), ``sub`` (``uid:<user id>``), ``aud`` (the instance
URL), ``scp``, ``client_id``, ``mty`` (``oauth``), ``iat``, ``nbf``, ``exp`` (the
session timeout), ``jti``. Salesforce documents these names; their exact values are not
verified, which is why clients should rely on the signature, ``iss`` and ``exp``.
"""

from __future__ import annotations

import secrets

import jwt

from .crypto import cached_private_key

__all__ = ["ACCESS_TOKEN_KEY", "ACCESS_TOKEN_KID", "jwt_access_token"]

ACCESS_TOKEN_KEY = "access-token"
ACCESS_TOKEN_KID = "CORE_ATJWT"


def jwt_access_token(
    *,
    issuer: str,
    org_id: str,
    user_id: str,
    client_id: str,
    instance_url: str,
    scopes: tuple[str, ...],
    issued_at: float,
    expires_at: float,
) -> str:
    """A signed JWT access token."""
    now = int(issued_at)
    claims = {
        "iss": issuer,
        "sub": f"uid:{user_id}",
        "aud": [instance_url],
        "scp": " ".join(scopes),
        "client_id": client_id,
        "mty": "oauth",
        "iat": now,
        "nbf": now,
        "exp": int(expires_at),
        "jti": secrets.token_hex(16),
    }
    headers = {
        "kid": ACCESS_TOKEN_KID,
        "typ": "JWT",
        "tty": "sfdc-core-token",
        "tnk": f"core/prod/{org_id}",
        "ver": "1.0",
    }
    key = cached_private_key(ACCESS_TOKEN_KEY)
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)
