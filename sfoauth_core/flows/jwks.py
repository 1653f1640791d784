"""Verification of JWTs we accept: ID tokens, asset tokens, JWT-format access tokens.

Specs: RFC 7515 (JWS), RFC 7517 (JWK Set), RFC 7519 (JWT), RFC 8725 (JWT best current
practice: explicit algorithms, no ``none``, no key confusion), OpenID Connect Core
§3.1.3.7.
Salesforce: "Salesforce Keys" (``/id/keys``) and ID token format; reference sections 2.4
and 9. SECURITY.md item 14.

Order of checks (everything hostile is refused before a claim is read):

1. size (``max_size``) and a parseable header;
2. ``alg`` is exactly ``RS256`` — ``none`` and ``HS256`` (the "public key as HMAC
   secret" confusion) never reach a key; ``jku``/``x5u``/``jwk`` headers are ignored:
   keys come only from the configured key set URL;
3. the key set, from the cache (keyed by URL) or fetched once from a trusted host; an
   unknown ``kid`` triggers exactly one re-fetch (key rotation), then fails;
4. pyjwt verifies the signature with ``algorithms=["RS256"]``, ``exp`` (required),
   ``nbf``, ``aud`` and ``iss`` with a small leeway; ``iss`` and ``aud`` are re-checked
   for exact string equality (PyJWT once matched issuers by substring, CVE-2024-53861).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import jwt

from ..config import ConnectedApp
from ..exceptions import SignatureError
from ._base import Flow, RetryPolicy
from .discovery import DEFAULT_READ_RETRY, ensure_trusted_url, fetch_keys
from .endpoints import endpoints_for

__all__ = ["ALGORITHMS", "DEFAULT_MAX_JWT_SIZE", "check_jwt_header", "verify_jwt"]

#: The only signature algorithm Salesforce uses for tokens it issues.
ALGORITHMS = ("RS256",)
DEFAULT_MAX_JWT_SIZE = 16384


def _describe(value: object, limit: int = 64) -> str:
    # Header values are attacker-controlled: show a short, printable form only.
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return repr(text[:limit])


def check_jwt_header(
    token: str, *, max_size: int = DEFAULT_MAX_JWT_SIZE
) -> dict[str, Any]:
    """Check size and header of a compact JWS before any key or claim is touched.

    Returns:
        The (unverified) header.

    Raises:
        SignatureError: oversized, not a compact JWS, or ``alg`` other than RS256.
    """
    if not isinstance(token, str) or not token:
        raise SignatureError("the JWT is empty")
    if len(token) > max_size:
        raise SignatureError(f"the JWT is larger than {max_size} characters")
    if token.count(".") != 2:
        raise SignatureError("the JWT is not a compact JWS (header.payload.signature)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise SignatureError("the JWT header cannot be decoded") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise SignatureError(
            f"the JWT is signed with {_describe(alg)}; only RS256 is accepted"
        )
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):  # pragma: no cover - pyjwt checks
        raise SignatureError("the JWT header 'kid' is not a string")
    return header


def _find_key(jwks: Mapping[str, Any], kid: str | None) -> Mapping[str, Any] | None:
    keys = [k for k in jwks.get("keys", ()) if isinstance(k, Mapping)]
    if kid is None:
        # No kid: acceptable only when the set leaves no choice.
        return keys[0] if len(keys) == 1 else None
    for key in keys:
        if key.get("kid") == kid:
            return key
    return None


def _load_key(key: Mapping[str, Any]) -> jwt.PyJWK:
    if key.get("kty") != "RSA":
        raise SignatureError("the matching key is not an RSA key")
    if key.get("alg") not in (None, "RS256"):
        raise SignatureError("the matching key is not meant for RS256")
    if key.get("use") not in (None, "sig"):
        raise SignatureError("the matching key is not a signing key")
    try:
        return jwt.PyJWK(dict(key), algorithm="RS256")
    except jwt.PyJWTError:
        raise SignatureError("the matching key cannot be loaded") from None


def verify_jwt(
    app: ConnectedApp,
    token: str,
    *,
    audience: str | Sequence[str],
    issuer: str | None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
    keys_url: str | None = None,
    leeway: float = 60,
    max_size: int = DEFAULT_MAX_JWT_SIZE,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[dict[str, Any]]:
    """Verify an RS256 JWT against the org's key set and return its claims.

    Args:
        token: the compact JWT.
        audience: the expected ``aud`` (one string, or several accepted values); the
            token's ``aud`` (a string or a list) must contain one of them exactly.
        issuer: the exact expected ``iss``; ``None`` skips the issuer check.
        jwks_cache: key sets by URL (a ``cachetools.TTLCache`` in the clients).
        keys_url: the key set URL; default ``<login_url>/id/keys``. Must be a trusted
            host.
        leeway: seconds of clock skew allowed for ``exp``/``nbf``/``iat``.
        max_size: longest accepted token, in characters.

    Returns:
        The verified claims.

    Raises:
        SignatureError: anything wrong with the token (the message never includes it).
        UntrustedHostError: ``keys_url`` is not a trusted host.
        MalformedResponseError: the key set is not ``{"keys": [...]}``.
    """
    header = check_jwt_header(token, max_size=max_size)
    url = keys_url or endpoints_for(app.login_url).keys
    ensure_trusted_url(app, url, what="keys URL")
    kid = header.get("kid")

    jwks = jwks_cache.get(url)
    fetched = False
    if jwks is None:
        jwks = yield from fetch_keys(app, keys_url=url, retry=retry)
        jwks_cache[url] = jwks
        fetched = True
    key = _find_key(jwks, kid)
    if key is None and not fetched:
        # The org may have rotated its keys since we cached them: re-fetch exactly once.
        jwks = yield from fetch_keys(app, keys_url=url, retry=retry)
        jwks_cache[url] = jwks
        key = _find_key(jwks, kid)
    if key is None:
        raise SignatureError(
            f"no key in the org's key set matches the JWT's kid {_describe(kid)}"
        )
    audiences = [audience] if isinstance(audience, str) else list(audience)
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        raise SignatureError("an expected audience is required to verify a JWT")
    claims = _decode(token, _load_key(key), audiences, issuer, leeway)
    # Exact comparisons, independent of pyjwt's own (defence in depth).
    if issuer is not None and claims.get("iss") != issuer:
        raise SignatureError("the JWT issuer does not match")
    aud = claims.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_audiences, list) or not any(
        a in audiences for a in token_audiences
    ):
        raise SignatureError("the JWT audience does not match")
    return claims


def _decode(
    token: str,
    key: jwt.PyJWK,
    audiences: list[str],
    issuer: str | None,
    leeway: float,
) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=audiences,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "aud"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise SignatureError("the JWT has expired") from None
    except jwt.ImmatureSignatureError:
        raise SignatureError(
            "the JWT is not valid yet (nbf/iat in the future)"
        ) from None
    except jwt.InvalidAudienceError:
        raise SignatureError("the JWT audience does not match") from None
    except jwt.InvalidIssuerError:
        raise SignatureError("the JWT issuer does not match") from None
    except jwt.MissingRequiredClaimError as exc:
        raise SignatureError(f"the JWT has no {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise SignatureError("the JWT signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise SignatureError(f"the JWT is invalid ({type(exc).__name__})") from None
    if not isinstance(claims, dict):  # pragma: no cover - pyjwt always returns a dict
        raise SignatureError("the JWT payload is not a JSON object")
    return claims
