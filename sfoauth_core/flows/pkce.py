"""PKCE (RFC 7636) for Salesforce: S256 always, ``plain`` never.

Salesforce takes ``code_challenge`` without ``code_challenge_method`` and treats it as S256
(reference 4.2); we send the method anyway only when asked, because Salesforce's own clients
do not. The challenge is computed by authlib; the verifier comes from ``secrets``.
"""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..exceptions import PKCEError
from ..tokens import masked

__all__ = ["create_code_verifier", "create_s256_challenge", "validate_code_verifier"]

_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def create_code_verifier(nbytes: int = 64) -> str:
    """A fresh high-entropy verifier (``nbytes`` random bytes, base64url; 86 chars default)."""
    return masked(secrets.token_urlsafe(nbytes))


def validate_code_verifier(verifier: str) -> None:
    """RFC 7636 §4.1 characters, 43+ chars (Salesforce accepts more than 128).

    Raises:
        PKCEError: the verifier is missing, too short or has invalid characters.
    """
    if not verifier:
        raise PKCEError("the PKCE code verifier is missing")
    if len(verifier) < 43 or not set(verifier) <= _UNRESERVED:
        raise PKCEError("the PKCE code verifier is malformed (RFC 7636 section 4.1)")


def create_s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding."""
    validate_code_verifier(verifier)
    return str(create_s256_code_challenge(verifier))
