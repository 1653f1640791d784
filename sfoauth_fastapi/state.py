"""Pending browser logins, bound to the browser by a signed cookie.

Between ``/login`` and ``/callback`` sfoauth remembers the core's
:class:`~sfoauth_core.login.PendingLogin` (``state``, PKCE verifier, nonce, issuer and
token URL, ``next``, who started it; SECURITY.md items 1, 2 and 5). None of it travels
in a URL or a readable cookie: the browser only holds a signed, HttpOnly, SameSite=Lax
cookie listing the ids of its pending logins (at most :data:`MAX_PENDING_LOGINS`, so
logins started in several tabs all work), and each record lives in a pending-login
store under an id derived from its ``state`` by a keyed HMAC
(:meth:`CookieSigner.flow_id_for`):

* :class:`InMemoryPendingFlowStore` — one process (tests, demos);
* :class:`RedisPendingFlowStore` — shared by every worker on one Redis (``GETDEL``);
* ``sfoauth_fastapi.storage.SQLAlchemyPendingFlowStore`` — shared through the database
  (``DELETE ... RETURNING``).

The stores are the core's async pending-login stores (:mod:`sfoauth_core.login.stores`)
under the names this package always used.

Cookies are signed with itsdangerous (the signer Starlette's own session middleware
uses), HMAC-SHA256, salted per purpose so a value signed for one cookie is refused by
another; each value carries its signing time and is refused after ``max_age``.
"""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer

from sfoauth_core.config import Secret
from sfoauth_core.exceptions import ConfigurationError
from sfoauth_core.login import (
    DEFAULT_LOGIN_TTL,
    AsyncInMemoryPendingLoginStore,
    AsyncPendingLoginStore,
    AsyncRedisPendingLoginStore,
    PendingLogin,
)

__all__ = [
    "DEFAULT_FLOW_TTL",
    "MAX_PENDING_LOGINS",
    "MIN_SECRET_KEY_LENGTH",
    "CookieSigner",
    "InMemoryPendingFlowStore",
    "PendingFlow",
    "PendingFlowStore",
    "RedisPendingFlowStore",
]

#: Seconds a started login may wait for its callback (SECURITY.md item 1).
DEFAULT_FLOW_TTL = DEFAULT_LOGIN_TTL
#: The shortest ``secret_key`` accepted.
MIN_SECRET_KEY_LENGTH = 32
#: Logins one browser may have pending at once (several tabs); the oldest beyond it
#: are dropped from the browser's flow cookie.
MAX_PENDING_LOGINS = 5
_MAX_COOKIE_VALUE = 1024
_PURPOSES = ("flow", "uid")

#: A started login, as remembered until its callback (the core's record).
PendingFlow = PendingLogin
#: Where pending logins wait for their callback; ``take`` is atomic and single use.
PendingFlowStore = AsyncPendingLoginStore
#: Pending logins in this process (a bounded TTL cache).
InMemoryPendingFlowStore = AsyncInMemoryPendingLoginStore
#: Pending logins in Redis, encrypted, expiring with ``SET EX``, taken with ``GETDEL``.
RedisPendingFlowStore = AsyncRedisPendingLoginStore


class _Serializer(URLSafeTimedSerializer):
    """Values as URL-safe base64 (cookie-safe: no comma, quote or space)."""

    default_signer = TimestampSigner


class CookieSigner:
    """Signs short cookie values (itsdangerous, HMAC-SHA256), per purpose, timestamped.

    Args:
        secret_key: at least 32 characters of secret (a :class:`Secret` or a string).
        setting: the setting name used in configuration errors.

    Raises:
        ConfigurationError: the key is missing or too short (the value is never
            shown).

    Example:
        >>> signer = CookieSigner("x" * 32)
        >>> signer.unsign("flow", signer.sign("flow", "abc"), max_age=60)
        'abc'
    """

    __slots__ = ("_flow_ids", "_secret", "_serializers")

    def __init__(self, secret_key: str | Secret | None, *, setting: str = "secret_key"):
        raw = secret_key.reveal() if isinstance(secret_key, Secret) else secret_key
        if not isinstance(raw, str) or not raw:
            raise ConfigurationError(
                setting,
                "is required [sfoauth_fastapi.E002]: it signs the login-flow and identity "
                'cookies; generate one with `python -c "import secrets; '
                'print(secrets.token_urlsafe(48))"`',
            )
        if len(raw) < MIN_SECRET_KEY_LENGTH:
            raise ConfigurationError(
                setting,
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters "
                "[sfoauth_fastapi.E002]: use secrets.token_urlsafe(48)",
            )
        self._secret = raw
        self._serializers = {p: self._serializer(p) for p in _PURPOSES}
        self._flow_ids = Signer(
            raw, salt="sfoauth.flow-id", digest_method=hashlib.sha256
        )

    def __repr__(self) -> str:
        return "CookieSigner(secret_key='**********')"

    def _serializer(self, purpose: str, now: float | None = None) -> _Serializer:
        if purpose not in _PURPOSES:
            raise ValueError(f"unknown cookie purpose {purpose!r}")
        signer: type[TimestampSigner] = TimestampSigner
        if now is not None:
            stamp = int(now)

            class _At(TimestampSigner):
                def get_timestamp(self) -> int:
                    return stamp

            signer = _At
        return _Serializer(
            self._secret,
            salt=f"sfoauth.cookie.{purpose}",
            signer=signer,
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def flow_id_for(self, state: str) -> str:
        """The pending-login id of a login, derived from its ``state`` with a keyed
        HMAC: the callback finds its login from the ``state`` it carries (so several
        logins can be pending in one browser), while the stored id reveals nothing
        about the state and cannot be computed without the secret key."""
        return self._flow_ids.get_signature(state).decode("ascii")

    def sign(self, purpose: str, value: str, *, now: float | None = None) -> str:
        """``value`` with its signing time and MAC, safe to put in a cookie."""
        serializer = (
            self._serializers[purpose]
            if now is None
            else self._serializer(purpose, now)
        )
        return serializer.dumps(value)

    def unsign(
        self,
        purpose: str,
        signed: str | None,
        *,
        max_age: float,
        now: float | None = None,
    ) -> str | None:
        """The value of a signed cookie, or ``None`` if it is absent, altered, signed
        for another purpose, older than ``max_age`` seconds or from the future."""
        if not signed or len(signed) > _MAX_COOKIE_VALUE:
            return None
        serializer = (
            self._serializers[purpose]
            if now is None
            else self._serializer(purpose, now)
        )
        try:
            value = serializer.loads(signed, max_age=int(max_age))
        except BadSignature:  # also SignatureExpired, malformed payloads
            return None
        return value if isinstance(value, str) else None
