"""Pending browser flows: kept server-side, bound to the browser by a signed cookie.

Between ``/login`` and ``/callback`` sfoauth remembers the ``state``, the PKCE
verifier, the nonce, where to go next, who started the flow and which authorization
server it was sent to (SECURITY.md items 1, 2 and 5). None of it travels in a URL or a
readable cookie: the browser only holds a signed, HttpOnly, SameSite=Lax cookie listing
the ids of its pending logins (at most :data:`MAX_PENDING_LOGINS`, so logins started
in several tabs all work), and each record lives in a :class:`PendingFlowStore` under
an id derived from its ``state`` by a keyed HMAC (:meth:`CookieSigner.flow_id_for`):

* :class:`InMemoryPendingFlowStore` — one process (tests, demos);
* :class:`RedisPendingFlowStore` — shared by every worker on one Redis (``GETDEL``);
* ``sfoauth_fastapi.storage.SQLAlchemyPendingFlowStore`` — shared through the database
  (``DELETE ... RETURNING``).

:meth:`PendingFlowStore.take` reads and deletes in one atomic step, so a flow is used at
most once even when two callbacks race (exactly one of them gets it). Persistent stores
keep the record encrypted with the token cipher, bound to the flow id.

Cookies are signed with HMAC-SHA256 (stdlib ``hmac``) under a key derived from the
app's ``secret_key`` and a purpose string, so a value signed for one cookie is refused
by another; each value carries its signing time and is refused after ``max_age``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from cachetools import TTLCache

from sfoauth_core.config import Secret
from sfoauth_core.exceptions import ConfigurationError, StorageError
from sfoauth_core.storage.cipher import TokenCipher

__all__ = [
    "DEFAULT_FLOW_TTL",
    "MAX_PENDING_LOGINS",
    "MIN_SECRET_KEY_LENGTH",
    "CookieSigner",
    "InMemoryPendingFlowStore",
    "PendingFlow",
    "PendingFlowStore",
    "RedisPendingFlowStore",
    "new_flow_id",
]

#: Seconds a started login may wait for its callback (SECURITY.md item 1).
DEFAULT_FLOW_TTL = 600.0
#: The shortest ``secret_key`` accepted.
MIN_SECRET_KEY_LENGTH = 32
#: Logins one browser may have pending at once (several tabs); the oldest beyond it
#: are dropped from the browser's flow cookie.
MAX_PENDING_LOGINS = 5
_MAX_COOKIE_VALUE = 1024


def new_flow_id() -> str:
    """A random flow id (256 bits)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieSigner:
    """Signs short cookie values with HMAC-SHA256, per purpose, with a timestamp.

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

    __slots__ = ("_keys",)

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
        self._keys: dict[str, bytes] = {}
        root = hashlib.sha256(b"sfoauth-cookie-key\x00" + raw.encode()).digest()
        for purpose in ("flow", "uid", "flow-id"):
            self._keys[purpose] = hmac.new(root, purpose.encode(), "sha256").digest()

    def __repr__(self) -> str:
        return "CookieSigner(secret_key='**********')"

    def _mac(self, purpose: str, message: bytes) -> bytes:
        return hmac.new(self._keys[purpose], message, "sha256").digest()

    def flow_id_for(self, state: str) -> str:
        """The pending-flow id of a login, derived from its ``state`` with a keyed
        HMAC: the callback finds its flow from the ``state`` it carries (so several
        logins can be pending in one browser), while the stored id reveals nothing
        about the state and cannot be computed without the secret key."""
        return _b64(self._mac("flow-id", state.encode()))

    def sign(self, purpose: str, value: str, *, now: float | None = None) -> str:
        """``value`` with its signing time and MAC, safe to put in a cookie."""
        stamp = int(time.time() if now is None else now)
        message = f"{_b64(value.encode())}.{stamp}"
        return f"{message}.{_b64(self._mac(purpose, message.encode()))}"

    def unsign(
        self,
        purpose: str,
        signed: str | None,
        *,
        max_age: float,
        now: float | None = None,
    ) -> str | None:
        """The value of a signed cookie, or ``None`` if it is absent, altered, signed
        for another purpose, or older than ``max_age`` seconds."""
        if not signed or len(signed) > _MAX_COOKIE_VALUE:
            return None
        parts = signed.split(".")
        if len(parts) != 3:
            return None
        message = f"{parts[0]}.{parts[1]}".encode()
        try:
            mac = _unb64(parts[2])
            stamp = int(parts[1])
            value = _unb64(parts[0]).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, message)):
            return None
        age = (time.time() if now is None else now) - stamp
        if age > max_age or age < -60:
            return None
        return value


@dataclass(frozen=True, slots=True)
class PendingFlow:
    """A started login, as remembered until its callback.

    Attributes:
        state: the ``state`` sent to Salesforce (≥ 256 bits from ``secrets``).
        code_verifier: the PKCE verifier (S256), never sent to the browser.
        nonce: the OpenID nonce, when one was requested.
        next_url: the validated same-origin path to return to.
        user_key: who started the flow (the callback must come from the same user).
        redirect_uri: the configured callback URL the authorization used.
        issuer: the authorization server the browser was sent to; the token endpoint
            of the exchange is derived from it, never from the callback (item 5).
        expires_at: epoch seconds after which the flow is refused.
    """

    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str | None = field(default=None, repr=False)
    next_url: str = "/"
    user_key: str = field(default="", repr=False)
    redirect_uri: str = ""
    issuer: str = ""
    expires_at: float = 0.0

    def is_expired(self, now: float | None = None) -> bool:
        """True once the flow's lifetime is over."""
        return (time.time() if now is None else now) >= self.expires_at

    def to_bytes(self) -> bytes:
        """JSON form (encrypt before it leaves the process)."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingFlow:
        """Inverse of :meth:`to_bytes`.

        Raises:
            StorageError: not a pending-flow record.
        """
        try:
            payload = json.loads(data)
            if not isinstance(payload, Mapping):
                raise TypeError("not an object")
            return cls(
                state=str(payload["state"]),
                code_verifier=str(payload["code_verifier"]),
                nonce=payload.get("nonce"),
                next_url=str(payload.get("next_url") or "/"),
                user_key=str(payload.get("user_key") or ""),
                redirect_uri=str(payload.get("redirect_uri") or ""),
                issuer=str(payload.get("issuer") or ""),
                expires_at=float(payload["expires_at"]),
            )
        except (KeyError, TypeError, ValueError):
            raise StorageError("stored pending flow is malformed") from None


@runtime_checkable
class PendingFlowStore(Protocol):
    """Where pending flows wait for their callback; ``take`` is atomic and single
    use."""

    async def put(self, flow_id: str, flow: PendingFlow) -> None:
        """Remember ``flow`` under ``flow_id`` until it expires."""
        ...

    async def take(self, flow_id: str) -> PendingFlow | None:
        """Remove and return the flow (``None`` if unknown, used or expired)."""
        ...


class InMemoryPendingFlowStore:
    """Pending flows in this process (a bounded TTL cache).

    Args:
        ttl: seconds a flow is kept (flows also carry their own expiry).
        maxsize: pending flows kept at most; the oldest are dropped beyond it.
    """

    def __init__(self, *, ttl: float = DEFAULT_FLOW_TTL, maxsize: int = 10_000) -> None:
        self._flows: TTLCache[str, PendingFlow] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._guard = threading.Lock()

    async def put(self, flow_id: str, flow: PendingFlow) -> None:
        """Remember ``flow``."""
        with self._guard:
            self._flows[flow_id] = flow

    async def take(self, flow_id: str) -> PendingFlow | None:
        """Remove and return the flow, once."""
        with self._guard:
            return self._flows.pop(flow_id, None)

    def __len__(self) -> int:
        return len(self._flows)

    def __repr__(self) -> str:
        return f"InMemoryPendingFlowStore(pending={len(self._flows)})"


def flow_cipher_context(flow_id: str) -> str:
    return f"sfoauth-flow:{flow_id}"


class RedisPendingFlowStore:
    """Pending flows in Redis, encrypted, expiring with ``SET EX``, taken with
    ``GETDEL``.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        cipher: encrypts each record, bound to its flow id.
        prefix: namespace of the keys (``<prefix>flow:<id>``).
        ttl: seconds a flow is kept.
    """

    def __init__(
        self,
        redis: Any,
        cipher: TokenCipher,
        *,
        prefix: str = "sfoauth:",
        ttl: float = DEFAULT_FLOW_TTL,
    ) -> None:
        self.redis = redis
        self.cipher = cipher
        self.prefix = prefix
        self.ttl = ttl

    def _name(self, flow_id: str) -> str:
        return f"{self.prefix}flow:{flow_id}"

    async def put(self, flow_id: str, flow: PendingFlow) -> None:
        """Store the encrypted flow with an expiry."""
        from redis.exceptions import RedisError

        blob = self.cipher.encrypt(
            flow.to_bytes(), context=flow_cipher_context(flow_id)
        )
        try:
            await self.redis.set(self._name(flow_id), blob, ex=max(1, int(self.ttl)))
        except RedisError as exc:
            raise StorageError(f"Redis failed: {type(exc).__name__}") from exc

    async def take(self, flow_id: str) -> PendingFlow | None:
        """Atomically read and delete the flow."""
        from redis.exceptions import RedisError

        try:
            raw = await self.redis.getdel(self._name(flow_id))
        except RedisError as exc:
            raise StorageError(f"Redis failed: {type(exc).__name__}") from exc
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return PendingFlow.from_bytes(
            self.cipher.decrypt(text, context=flow_cipher_context(flow_id))
        )

    def __repr__(self) -> str:
        return f"RedisPendingFlowStore(prefix={self.prefix!r})"
