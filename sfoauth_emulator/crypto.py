"""Keys, signatures and random values of the emulator.

RSA keys are expensive to generate, so one set is generated per process (on first use)
and shared by every emulator instance.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets
import string
import threading
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "at_hash",
    "cached_private_key",
    "certificate_pem_for",
    "check_certificate_pem",
    "jwk_of",
    "new_access_token",
    "new_auth_code",
    "new_private_key_pem",
    "new_refresh_token",
    "new_user_code",
    "private_pem",
    "public_key_pem",
    "public_pem",
    "s256_challenge",
    "sign_jwt",
    "token_signature",
    "verification_key",
]

_KEYS: dict[str, rsa.RSAPrivateKey] = {}
_KEYS_LOCK = threading.Lock()
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"


def cached_private_key(name: str) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, generated once per process for each ``name``."""
    with _KEYS_LOCK:
        key = _KEYS.get(name)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _KEYS[name] = key
        return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """Unencrypted PKCS#8 PEM of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """SubjectPublicKeyInfo PEM of ``key``'s public half."""
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode("ascii")
    )


def new_private_key_pem() -> str:
    """A fresh RSA 2048 private key as unencrypted PKCS#8 PEM (a JWT bearer key).

    Example:
        >>> pem = new_private_key_pem()
        >>> emu.apps["jwt"].certificate_pem = public_key_pem(pem)
    """
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def public_key_pem(private_key_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of a private key PEM: what an emulated app's
    ``certificate_pem`` checks JWT bearer assertions against."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return public_pem(key)


def certificate_pem_for(
    private_key_pem: str, common_name: str = "sfoauth jwt", days: int = 365
) -> str:
    """A self-signed X.509 certificate (PEM) for a private key: what ``openssl req -new
    -x509 -key server.key`` makes and what Salesforce users upload for the JWT bearer flow.

    Example:
        >>> pem = new_private_key_pem()
        >>> emu.apps["jwt"].certificate_pem = certificate_pem_for(pem)
    """
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def verification_key(pem: str) -> rsa.RSAPublicKey:
    """The RSA public key that checks JWT bearer assertions, from what an app holds: an
    X.509 certificate (what Salesforce users upload), a SubjectPublicKeyInfo public key
    or a PKCS#1 ``RSA PUBLIC KEY``.

    Raises:
        ValueError: not a PEM certificate or public key, or not RSA.
    """
    data = pem.strip().encode("ascii", "replace")
    key: object
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            raise ValueError("the certificate PEM cannot be read") from None
    elif b"-----BEGIN" in data and b"PRIVATE KEY-----" in data:
        raise ValueError(
            "a private key was given: upload the certificate (or public key), "
            "keep the private key with the client"
        )
    else:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise ValueError(
                "expected an X.509 certificate PEM (-----BEGIN CERTIFICATE-----) "
                "or a public key PEM"
            ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the JWT bearer flow needs an RSA key (RS256)")
    return key


def check_certificate_pem(pem: object) -> str:
    """``pem`` if it is a usable JWT bearer certificate or public key PEM.

    Raises:
        ValueError: it is not (the message says what was expected).
    """
    if not isinstance(pem, str):
        raise ValueError("certificate_pem must be a PEM text")
    verification_key(pem)
    return pem


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public JWK of ``key`` as ``/id/keys`` lists it."""
    data: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {
        "kty": "RSA",
        "n": data["n"],
        "e": data["e"],
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
    }


def sign_jwt(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    """RS256 compact JWS with ``kid`` and ``typ: JWT`` headers."""
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"}
    )


def at_hash(access_token: str) -> str:
    """OIDC ``at_hash``: base64url of the left half of SHA-256, without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def token_signature(secret: str, id_url: str, issued_at: str) -> str:
    """Reference 2.3: ``base64(HMAC-SHA256(secret, id + issued_at))`` with padding."""
    mac = hmac.new(
        secret.encode("utf-8"), (id_url + issued_at).encode("utf-8"), "sha256"
    )
    return base64.b64encode(mac.digest()).decode("ascii")


def s256_challenge(verifier: str) -> str:
    """PKCE S256: ``BASE64URL(SHA256(ASCII(verifier)))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


def new_access_token(org_id: str) -> str:
    """``<15-char org id>!AQ…`` (opaque session id shape)."""
    return f"{org_id[:15]}!AQ{_random_text(94)}"


def new_refresh_token() -> str:
    """``5Aep861…`` (opaque refresh token shape)."""
    return "5Aep861" + _random_text(80)


def new_auth_code() -> str:
    """A standard-base64 code ending in ``==`` (clients must URL-encode/decode it)."""
    # 64 bytes -> 88 base64 characters with two padding characters; '+' and '/' appear.
    return "aPrx" + base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def new_user_code() -> str:
    """Eight upper-case alphanumerics, as Salesforce's device flow shows them."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))
