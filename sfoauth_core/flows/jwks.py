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
   unknown ``kid`` triggers at most one re-fetch (key rotation), then fails. With a
   :class:`JwksCache` (the clients' cache) key sets expire after a TTL and re-fetches
   of one key set URL are rate-limited to one per ``min_refetch_interval``, so a stream
   of tokens with forged ``kid`` values costs no outbound request after the first;
4. pyjwt verifies the signature with ``algorithms=["RS256"]``, ``exp`` (required),
   ``nbf``, ``aud`` and ``iss`` with a small leeway; ``iss`` and ``aud`` are re-checked
   for exact string equality (PyJWT once matched issuers by substring, CVE-2024-53861).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import jwt
from cachetools import TTLCache
from jwt.types import Options

from ..config import ConnectedApp
from ..exceptions import SignatureError
from ._base import Flow, RetryPolicy
from .discovery import DEFAULT_READ_RETRY, ensure_trusted_url, fetch_keys
from .endpoints import endpoints_for

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_JWT_SIZE",
    "JWKS_MIN_REFETCH_SECONDS",
    "JWKS_TTL_SECONDS",
    "JwksCache",
    "check_jwt_header",
    "verify_jwt",
]

#: The only signature algorithm Salesforce uses for tokens it issues.
ALGORITHMS = ("RS256",)
DEFAULT_MAX_JWT_SIZE = 16384
#: Key sets are kept this long (SECURITY.md item 14).
JWKS_TTL_SECONDS = 3600.0
#: At most one fetch of one key set URL per this many seconds (issue 13 item 6).
JWKS_MIN_REFETCH_SECONDS = 60.0


class JwksCache(MutableMapping[str, Mapping[str, Any]]):
    """Key sets by URL with a TTL, and a per-URL minimum interval between fetches.

    A mapping (``cachetools.TTLCache`` underneath) so :func:`verify_jwt` reads and
    writes it like a dict; :meth:`may_fetch` and :meth:`note_fetch` add the rate limit.
    A key set URL belongs to one issuer (``<issuer>/id/keys``), so the limit is per
    issuer. Thread-safe; share one per client.

    Args:
        ttl: seconds a fetched key set is used before it is fetched again.
        min_refetch_interval: seconds after a fetch during which the same URL is not
            fetched again, whatever ``kid`` a token names.
        maxsize: key set URLs kept.
        timer: a monotonic clock (for tests).
    """

    def __init__(
        self,
        *,
        ttl: float = JWKS_TTL_SECONDS,
        min_refetch_interval: float = JWKS_MIN_REFETCH_SECONDS,
        maxsize: int = 16,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_refetch_interval = float(min_refetch_interval)
        self._timer = timer
        self._lock = threading.Lock()
        self._keys: TTLCache[str, Mapping[str, Any]] = TTLCache(
            maxsize=maxsize, ttl=ttl, timer=timer
        )
        # When each URL was last fetched; an entry lives exactly the refetch interval.
        self._recent: TTLCache[str, float] = TTLCache(
            maxsize=maxsize * 4, ttl=max(self.min_refetch_interval, 1e-9), timer=timer
        )

    def may_fetch(self, url: str) -> bool:
        """True unless ``url`` was fetched less than ``min_refetch_interval`` ago."""
        with self._lock:
            return url not in self._recent

    def note_fetch(self, url: str) -> None:
        """Record a fetch of ``url`` (successful or not) now."""
        with self._lock:
            self._recent[url] = self._timer()

    def __getitem__(self, url: str) -> Mapping[str, Any]:
        with self._lock:
            return self._keys[url]

    def __setitem__(self, url: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._keys[url] = value

    def __delitem__(self, url: str) -> None:
        with self._lock:
            del self._keys[url]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._keys))

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def __repr__(self) -> str:
        return f"JwksCache({len(self)} key set(s))"


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
    issuer: str | Sequence[str] | None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
    keys_url: str | None = None,
    leeway: float = 60,
    max_size: int = DEFAULT_MAX_JWT_SIZE,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
    check_times: bool = True,
) -> Flow[dict[str, Any]]:
    """Verify an RS256 JWT against the org's key set and return its claims.

    Args:
        token: the compact JWT.
        audience: the expected ``aud`` (one string, or several accepted values); the
            token's ``aud`` (a string or a list) must contain one of them exactly.
        issuer: the exact expected ``iss`` (or several accepted values); ``None`` skips
            the issuer check.
        jwks_cache: key sets by URL (a ``cachetools.TTLCache`` in the clients).
        keys_url: the key set URL; default ``<login_url>/id/keys``. Must be a trusted
            host.
        leeway: seconds of clock skew allowed for ``exp``/``nbf``/``iat``.
        max_size: longest accepted token, in characters.
        check_times: refuse an expired or not-yet-valid token (``False``: ``exp`` must
            be present but is returned as signed, for a caller who wants to *learn*
            the expiry, e.g. of a JWT access token).

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
    if jwks is None and _may_fetch(jwks_cache, url):
        jwks = yield from _fetch(app, url, jwks_cache, retry)
        fetched = True
    key = _find_key(jwks, kid) if jwks is not None else None
    if key is None and not fetched and _may_fetch(jwks_cache, url):
        # The org may have rotated its keys since we cached them: re-fetch at most once
        # (and, with a JwksCache, at most once per interval for all tokens).
        jwks = yield from _fetch(app, url, jwks_cache, retry)
        key = _find_key(jwks, kid)
    if key is None:
        raise SignatureError(
            f"no key in the org's key set matches the JWT's kid {_describe(kid)}"
        )
    audiences = [audience] if isinstance(audience, str) else list(audience)
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        raise SignatureError("an expected audience is required to verify a JWT")
    issuers = (
        None
        if issuer is None
        else ([issuer] if isinstance(issuer, str) else list(issuer))
    )
    claims = _decode(token, _load_key(key), audiences, issuers, leeway, check_times)
    # Exact comparisons, independent of pyjwt's own (defence in depth).
    iss = claims.get("iss")
    if issuers is not None and not (isinstance(iss, str) and iss in issuers):
        raise SignatureError("the JWT issuer does not match")
    aud = claims.get("aud")
    token_audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_audiences, list) or not any(
        a in audiences for a in token_audiences
    ):
        raise SignatureError("the JWT audience does not match")
    return claims


def _may_fetch(cache: MutableMapping[str, Mapping[str, Any]], url: str) -> bool:
    return cache.may_fetch(url) if isinstance(cache, JwksCache) else True


def _fetch(
    app: ConnectedApp,
    url: str,
    cache: MutableMapping[str, Mapping[str, Any]],
    retry: RetryPolicy,
) -> Flow[Mapping[str, Any]]:
    if isinstance(cache, JwksCache):
        cache.note_fetch(url)  # a failed fetch counts too: no retry storm on errors
    jwks = yield from fetch_keys(app, keys_url=url, retry=retry)
    cache[url] = jwks
    return jwks


def _decode(
    token: str,
    key: jwt.PyJWK,
    audiences: list[str],
    issuers: list[str] | None,
    leeway: float,
    check_times: bool = True,
) -> dict[str, Any]:
    options: Options = {"require": ["exp", "aud"], "verify_signature": True}
    if not check_times:
        options["verify_exp"] = False
        options["verify_nbf"] = False
        options["verify_iat"] = False
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=audiences,
            issuer=issuers,
            leeway=leeway,
            options=options,
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
