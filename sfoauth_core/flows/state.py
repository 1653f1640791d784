"""Unguessable values for ``state`` and ``nonce`` (SECURITY.md item 1: >= 128 bits)."""

from __future__ import annotations

import hmac
import secrets

from ..exceptions import StateMismatchError
from ..tokens import masked

__all__ = ["check_state", "create_nonce", "create_state"]


def create_state() -> str:
    """256 random bits, URL-safe."""
    return masked(secrets.token_urlsafe(32))


def create_nonce() -> str:
    """256 random bits, URL-safe (OpenID Connect ``nonce``)."""
    return masked(secrets.token_urlsafe(32))


def check_state(received: str | None, expected: str | None) -> None:
    """Constant-time comparison of the callback's ``state`` with the stored one.

    Raises:
        StateMismatchError: either is missing or they differ (values never in the message).
    """
    if not expected:
        raise StateMismatchError(
            "no pending authorization: the expected state is missing"
        )
    if not received:
        raise StateMismatchError("the callback carries no state")
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise StateMismatchError(
            "the callback's state does not match the pending request"
        )
