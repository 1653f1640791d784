"""Asset token flow: trade an access token (and an actor token) for an asset token.

Specs: RFC 8693 (OAuth 2.0 Token Exchange), RFC 7800 (``cnf`` proof-of-possession key),
RFC 7519 (JWT).
Salesforce: "OAuth 2.0 Asset Token Flow for Securing Connected Devices" (help topic
``remoteaccess_oauth_asset_token_flow``), "Using and Validating Asset Tokens",
"Proof-of-Possession for Asset Tokens"; the ``AssetTokenEvent`` object; reference
section 4.6.

Salesforce specifics: the request is a form POST to the token endpoint of the login URL
(asset tokens are issued from Experience Cloud sites or My Domains, so ``login_url``
should be one of those) with
``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``; no client authentication
is sent. This is the one Salesforce flow whose response carries ``expires_in``. The
asset token is an RS256 JWT signed with an org certificate.

Actor tokens: their signing, ``aud`` and ``exp`` rules are not documented [unv in the
reference]. Salesforce binds the device key in ``cnf.jwk`` into the asset token when the
actor token is signed with the matching private key (proof of possession), so
:func:`create_actor_token` signs with RS256 when given a key and otherwise produces an
unsigned JWT (``"alg": "none"``), which carries the device description without any
proof.

:func:`request_asset_token` refuses an answer whose ``issued_token_type`` is not
``urn:ietf:params:oauth:token-type:jwt`` or whose ``token_type`` is not ``Bearer``, and
checks that the asset token is signed by a key of the org's key set
(``<login_url>/id/keys``, RS256, unexpired) before returning it. The claims on
:class:`~sfoauth_core.tokens.AssetToken` are those of that checked token; their audience
is the backend's business. A backend that receives an asset token from a device must use
:func:`verify_asset_token`, which also checks ``aud`` and ``iss`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import RSAAlgorithm

from ..config import MIN_RSA_KEY_BITS, ConnectedApp
from ..exceptions import ConfigurationError, FlowError, MalformedResponseError
from ..tokens import AssetToken, Token, masked
from ._base import Flow, HttpResponse, parse_json_object, prepare_token_request
from .discovery import ensure_trusted_url
from .endpoints import endpoints_for
from .jwks import JwksCache, verify_jwt

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "JWT_TOKEN_TYPE",
    "TOKEN_EXCHANGE_GRANT",
    "create_actor_token",
    "parse_asset_token_response",
    "prepare_asset_token_form",
    "request_asset_token",
    "verify_asset_token",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def _load_signing_key(signing_key: Any) -> rsa.RSAPrivateKey:
    if isinstance(signing_key, (str, bytes)):
        data = signing_key.encode() if isinstance(signing_key, str) else signing_key
        try:
            signing_key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(
                "signing_key", "cannot be read (expected an unencrypted PEM RSA key)"
            ) from None
    if not isinstance(signing_key, rsa.RSAPrivateKey):
        raise ConfigurationError("signing_key", "must be an RSA private key (RS256)")
    if signing_key.key_size < MIN_RSA_KEY_BITS:
        raise ConfigurationError(
            "signing_key", f"must be at least {MIN_RSA_KEY_BITS} bits"
        )
    return signing_key


def create_actor_token(
    *,
    device_id: str | None = None,
    name: str | None = None,
    asset: Mapping[str, Any] | None = None,
    device_key: Mapping[str, Any] | None = None,
    signing_key: Any = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Build the actor token that describes a connected device.

    Claims (as ``AssetTokenEvent`` reflects them): ``did`` (device id), ``Name``
    (display name of the asset token), ``cnf: {"jwk": device_key}`` (the device's RSA
    public key) and ``Asset`` (an existing asset's name/serial number, or data to create
    one).

    Args:
        device_id: the ``did`` claim.
        name: the ``Name`` claim.
        asset: the ``Asset`` claim.
        device_key: the device's public key as a JWK. When ``signing_key`` is given and
            this is not, the public half of ``signing_key`` is used.
        signing_key: the device's RSA private key (object or PEM). Given: the token is
            signed RS256 (proof of possession). Absent: the token is unsigned (``alg
            none``), because Salesforce's actor-token signing rules are undocumented.
        extra_claims: more claims (they never override the ones above).

    Returns:
        The compact JWT.

    Raises:
        ConfigurationError: no claim at all, or an unusable key.
    """
    claims: dict[str, Any] = dict(extra_claims or {})
    key = _load_signing_key(signing_key) if signing_key is not None else None
    if device_key is None and key is not None:
        device_key = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if device_key is not None and not isinstance(device_key, Mapping):
        raise ConfigurationError("device_key", "must be a JWK (a mapping)")
    for claim, value in (
        ("did", device_id),
        ("Name", name),
        ("Asset", dict(asset) if asset is not None else None),
        ("cnf", {"jwk": dict(device_key)} if device_key is not None else None),
    ):
        if value is not None:
            claims[claim] = value
    if not claims:
        raise ConfigurationError(
            "actor_token", "needs at least one of device_id, name, asset or device_key"
        )
    if key is None:
        # pyjwt's "none" algorithm ignores the key; its type hints do not say so.
        return jwt.encode(claims, "", algorithm="none")
    return jwt.encode(claims, key, algorithm="RS256")


def prepare_asset_token_form(
    access_token: Token | str, actor_token: str | None = None
) -> dict[str, str]:
    """The RFC 8693 form for Salesforce's asset token exchange."""
    subject = (
        access_token.access_token if isinstance(access_token, Token) else access_token
    )
    if not isinstance(subject, str) or not subject:
        raise FlowError("an access token is required for the asset token flow")
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "subject_token": masked(subject),
    }
    if actor_token:
        form["actor_token_type"] = JWT_TOKEN_TYPE
        form["actor_token"] = masked(actor_token)
    return form


def parse_asset_token_response(response: HttpResponse) -> AssetToken:
    """Decode the exchange answer into an :class:`AssetToken` (claims not verified).

    Raises:
        OAuthProtocolError: (a subclass) Salesforce answered with an OAuth error.
        MalformedResponseError: no token, a token that is not a JWT, or a bad
            ``expires_in``.
    """
    payload = parse_json_object(response)
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedResponseError("asset token response has no 'access_token'")
    expires_in = payload.get("expires_in")
    seconds: int | None = None
    if expires_in is not None:
        if isinstance(expires_in, bool) or not str(expires_in).strip().isdigit():
            raise MalformedResponseError(
                "asset token response 'expires_in' is not a number"
            )
        seconds = int(str(expires_in).strip())
    issued_type = payload.get("issued_token_type")
    token_type = payload.get("token_type")
    if issued_type != JWT_TOKEN_TYPE:
        # RFC 8693 §2.2.1: issued_token_type is REQUIRED; Salesforce issues JWTs.
        raise MalformedResponseError(
            "asset token response 'issued_token_type' is missing or is not "
            f"{JWT_TOKEN_TYPE}"
        )
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise MalformedResponseError("asset token response 'token_type' is not Bearer")
    token_type = "Bearer"
    try:
        # Informational only: verify_asset_token is the trusted path.
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise MalformedResponseError("the asset token is not a JWT") from None
    return AssetToken(
        token=token,
        expires_in=seconds,
        claims=claims,
        issued_token_type=issued_type,
        token_type=token_type,
    )


def request_asset_token(
    app: ConnectedApp,
    access_token: Token | str,
    *,
    actor_token: str | None = None,
    device_id: str | None = None,
    asset: Mapping[str, Any] | None = None,
    name: str | None = None,
    device_key: Mapping[str, Any] | None = None,
    token_url: str | None = None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]] | None = None,
    leeway: float = 60,
) -> Flow[AssetToken]:
    """Exchange an access token for an asset token (never retried: may create an Asset).

    Args:
        access_token: a Salesforce access token from any user flow.
        actor_token: a ready actor token (see :func:`create_actor_token`); or give
            ``device_id``/``asset``/``name``/``device_key`` and an unsigned one is
            built.
        token_url: another token endpoint (must be a trusted host); default the login
            URL's.
        jwks_cache: the org's key sets (the client's cache); a throw-away one when
            ``None`` (one key set request).

    Raises:
        ConfigurationError: both ``actor_token`` and device claims were given.
        OAuthProtocolError: (a subclass) Salesforce refused the exchange.
        MalformedResponseError: the answer is not an asset token (wrong or missing
            ``issued_token_type``, a token type other than Bearer, not a JWT).
        SignatureError: the asset token is not signed by a key in the org's key set,
            or has expired.
    """
    claims_given = any(v is not None for v in (device_id, asset, name, device_key))
    if actor_token is not None and claims_given:
        raise ConfigurationError(
            "actor_token", "pass either an actor token or the device claims, not both"
        )
    if actor_token is None and claims_given:
        actor_token = create_actor_token(
            device_id=device_id, name=name, asset=asset, device_key=device_key
        )
    form = prepare_asset_token_form(access_token, actor_token)
    url = token_url or endpoints_for(app.login_url).token
    ensure_trusted_url(app, url, what="token URL")
    response = yield prepare_token_request(url, form)
    if not isinstance(response, HttpResponse):
        raise TypeError("the driver must send an HttpResponse after an HttpRequest")
    issued = parse_asset_token_response(response)
    # The issuing side does not know the backend's audience: any audience the token
    # names is taken, but the signature must come from the org's keys.
    aud = issued.claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not audiences:
        raise MalformedResponseError("the asset token names no audience")
    yield from verify_jwt(
        app,
        issued.token,
        audience=[a for a in audiences if isinstance(a, str)],
        issuer=None,
        jwks_cache=JwksCache() if jwks_cache is None else jwks_cache,
        leeway=leeway,
    )
    return issued


def verify_asset_token(
    app: ConnectedApp,
    jwt: str,
    *,
    audience: str,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
    issuer: str | Sequence[str] | None = None,
    keys_url: str | None = None,
    leeway: float = 60,
) -> Flow[dict[str, Any]]:
    """Verify an asset token presented by a device; return its claims.

    The signature is checked against the org's key set at ``<login_url>/id/keys`` (or
    ``keys_url``); ``aud`` must contain ``audience`` exactly (one of the app's
    configured asset audiences); ``exp`` is required; ``iss`` must equal the expected
    issuer exactly (no prefix, suffix or case folding). The reference does not state
    which URL Salesforce puts in ``iss`` (the site or My Domain URL is likely), so
    ``issuer`` may name one URL or several accepted ones; default the app's login URL.

    Raises:
        SignatureError: any failed check (the message never includes the token).
    """
    expected = app.login_url if issuer is None else issuer
    return (
        yield from verify_jwt(
            app,
            jwt,
            audience=audience,
            issuer=expected,
            jwks_cache=jwks_cache,
            keys_url=keys_url,
            leeway=leeway,
        )
    )
