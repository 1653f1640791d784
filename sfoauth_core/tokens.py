"""Value objects returned by the flows: tokens, authorization requests, identities.

All are frozen dataclasses. Tokens never show their values in ``repr``/``str``
(SECURITY.md item 20).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from .exceptions import MalformedResponseError
from .ids import parse_identity_url

__all__ = [
    "AssetToken",
    "AuthorizationRequest",
    "DeviceAuthorization",
    "Identity",
    "Introspection",
    "MaskedBytes",
    "MaskedStr",
    "Token",
    "mask",
    "masked",
]

# ``issued_at`` stays in ``raw`` verbatim: the signature covers the exact string.
_KNOWN_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "instance_url",
        "id",
        "scope",
        "token_type",
        "signature",
        "id_token",
        "expires_in",
    }
)


@functools.lru_cache(maxsize=256)
def _ids_of(id_url: str) -> tuple[str, str]:
    # Every refresh of a connection returns the same identity URL: parse it once.
    return parse_identity_url(urlsplit(id_url).path)


def mask(value: str | None) -> str:
    """A display form of a secret that reveals nothing but its presence."""
    return "None" if value is None else "'**********'"


class MaskedStr(str):
    """A ``str`` whose ``repr`` is masked (issue 13 defect 1).

    The core carries codes, verifiers, states, tokens and secrets in this type, so that a
    traceback printed with its frame locals (Django's debug page and error mail,
    ``traceback.TracebackException(capture_locals=True)``, debuggers' ``repr``) shows
    ``'**********'`` where the value was. It is still a ``str``: sending, comparing,
    hashing and JSON encoding see the real value (``str()`` and f-strings too, so never
    format one into a message).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


class MaskedBytes(bytes):
    """A ``bytes`` whose ``repr`` is masked: a response body as the drivers keep it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"b'**********' ({len(self)} bytes)"


def masked(value: str) -> MaskedStr:
    """``value`` as a :class:`MaskedStr` (itself when it already is one)."""
    return value if isinstance(value, MaskedStr) else MaskedStr(value)


def _str_field(payload: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise MalformedResponseError(f"token response has no {name!r}")
        return None
    if not isinstance(value, str):
        raise MalformedResponseError(f"token response field {name!r} is not a string")
    if not value.isprintable():
        raise MalformedResponseError(
            f"token response field {name!r} has control characters"
        )
    return value


#: A bearer credential is sent as ``Authorization: Bearer <value>``: visible ASCII only
#: (RFC 7230 field-vchar minus space; Salesforce's tokens contain ``!`` and ``.``).
_CREDENTIAL_RE = re.compile(r"[\x21-\x7e]+")
_MAX_CREDENTIAL_LENGTH = 8192


def _credential_field(
    payload: Mapping[str, Any], name: str, *, required: bool
) -> str | None:
    value = _str_field(payload, name, required=required)
    if value is not None and (
        len(value) > _MAX_CREDENTIAL_LENGTH or not _CREDENTIAL_RE.fullmatch(value)
    ):
        raise MalformedResponseError(
            f"token response field {name!r} has characters a bearer token cannot "
            "(spaces, non-ASCII or control characters) or is too long"
        )
    return value


def _token_type(payload: Mapping[str, Any]) -> str:
    value = _str_field(payload, "token_type", required=True)
    # RFC 6749 §5.1: the type is case-insensitive. Salesforce only issues Bearer.
    if value is None or value.lower() != "bearer":
        raise MalformedResponseError(
            "token response 'token_type' is not Bearer; sfoauth only sends bearer tokens"
        )
    return "Bearer"


_ISSUED_AT_RE = re.compile(r"[0-9]{1,13}")
_EXPIRES_IN_RE = re.compile(r"[0-9]{1,9}")


def parse_issued_at(value: Any) -> float | None:
    """``issued_at`` → epoch seconds: 12-13 digits are milliseconds (Salesforce), fewer are
    seconds."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not _ISSUED_AT_RE.fullmatch(text):
        raise MalformedResponseError("token response field 'issued_at' is not a number")
    number = int(text)
    return number / 1000.0 if len(text) >= 12 else float(number)


@dataclass(frozen=True, slots=True)
class Token:
    """An OAuth token set as Salesforce returned it.

    ``access_token`` and ``refresh_token`` are masked in ``repr``. ``expires_at`` is ``None``
    when Salesforce did not say (it almost never does; see the token lifecycle docs).
    ``issued_at`` is epoch seconds (Salesforce sends milliseconds; converted).
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    instance_url: str | None = None
    id_url: str | None = None
    org_id: str | None = None
    user_id: str | None = None
    issued_at: float | None = None
    scopes: tuple[str, ...] = ()
    token_type: str = "Bearer"
    signature: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The token endpoint that issued this grant (login/test host, My Domain or site);
    #: refresh, revoke, introspect and userinfo for the grant go to its host. ``None``
    #: for tokens stored before it was recorded: the app's configured login URL is used.
    token_url: str | None = None

    @classmethod
    def from_response(
        cls,
        payload: Mapping[str, Any],
        *,
        previous: Token | None = None,
        now: float | None = None,
        token_url: str | None = None,
    ) -> Token:
        """Build a token from a token-endpoint JSON object (or a user-agent fragment).

        Args:
            payload: the decoded response.
            previous: the token being refreshed; its refresh token, ids and instance URL are
                kept when the response omits them (Salesforce sends no refresh token on refresh
                unless rotation is on).
            now: the current epoch time (for ``expires_in``), for tests.
            token_url: the token endpoint the request was sent to (the grant's
                authorization server); on a refresh without one, ``previous``'s is kept.

        Salesforce sends ``access_token``, ``instance_url``, ``id`` and ``token_type``
        (``Bearer``) in every grant's answer (reference 2.2 and each flow's section), so
        all four are required, on a refresh too.

        Raises:
            MalformedResponseError: a required field is missing or has the wrong type, the
                token type is not Bearer, or a token has characters a header cannot carry.
        """
        access_token = cast(
            "str", _credential_field(payload, "access_token", required=True)
        )
        refresh_token = _credential_field(payload, "refresh_token", required=False)
        instance_url = _str_field(payload, "instance_url", required=True)
        id_url = _str_field(payload, "id", required=True)
        org_id = user_id = None
        if id_url is not None:
            try:
                org_id, user_id = _ids_of(id_url)
            except ValueError:
                raise MalformedResponseError(
                    "token response field 'id' is not an identity URL"
                ) from None
        scope = payload.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise MalformedResponseError("token response field 'scope' is not a string")
        scopes = tuple(scope.split()) if scope else ()
        token_type = _token_type(payload)
        expires_at = None
        expires_in = payload.get("expires_in")
        if expires_in is not None:
            if isinstance(expires_in, bool) or not _EXPIRES_IN_RE.fullmatch(
                str(expires_in).strip()
            ):
                raise MalformedResponseError("'expires_in' is not a number of seconds")
            seconds = int(str(expires_in).strip())
            expires_at = (time.time() if now is None else now) + seconds
        if previous is not None:
            refresh_token = refresh_token or previous.refresh_token
            instance_url = instance_url or previous.instance_url
            id_url = id_url or previous.id_url
            org_id = org_id or previous.org_id
            user_id = user_id or previous.user_id
            scopes = scopes or previous.scopes
            token_url = token_url or previous.token_url
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            instance_url=instance_url.rstrip("/") if instance_url else None,
            id_url=id_url,
            org_id=org_id,
            user_id=user_id,
            issued_at=parse_issued_at(payload.get("issued_at")),
            scopes=scopes,
            token_type=token_type,
            signature=_str_field(payload, "signature", required=False),
            id_token=_str_field(payload, "id_token", required=False),
            expires_at=expires_at,
            raw={k: v for k, v in payload.items() if k not in _KNOWN_FIELDS},
            token_url=token_url,
        )

    # Storage ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for stores; encrypt it before it touches disk)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "instance_url": self.instance_url,
            "id_url": self.id_url,
            "org_id": self.org_id,
            "user_id": self.user_id,
            "issued_at": self.issued_at,
            "scopes": list(self.scopes),
            "token_type": self.token_type,
            "signature": self.signature,
            "id_token": self.id_token,
            "expires_at": self.expires_at,
            "raw": dict(self.raw),
            "token_url": self.token_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Token:
        """Inverse of :meth:`to_dict`.

        A dict stored before ``token_url`` was recorded loads with ``token_url=None``
        (operations then use the app's configured login URL, as before).

        Raises:
            MalformedResponseError: the dict has no access token, or a ``token_url``
                that is not a string.
        """
        if not isinstance(data.get("access_token"), str):
            raise MalformedResponseError("stored token has no access token")
        token_url = data.get("token_url")
        if token_url is not None and not isinstance(token_url, str):
            raise MalformedResponseError("stored token's token_url is not a string")
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            instance_url=data.get("instance_url"),
            id_url=data.get("id_url"),
            org_id=data.get("org_id"),
            user_id=data.get("user_id"),
            issued_at=data.get("issued_at"),
            scopes=tuple(data.get("scopes") or ()),
            token_type=data.get("token_type") or "Bearer",
            signature=data.get("signature"),
            id_token=data.get("id_token"),
            expires_at=data.get("expires_at"),
            raw=dict(data.get("raw") or {}),
            token_url=token_url or None,
        )

    def is_expired(self, *, leeway: float = 0.0, now: float | None = None) -> bool:
        """True when ``expires_at`` is known and within ``leeway`` seconds of ``now``."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) + leeway >= self.expires_at

    def with_expiry(self, expires_at: float | None) -> Token:
        """A copy with ``expires_at`` set (learned from introspection or a session timeout)."""
        return _replace(self, expires_at=expires_at)

    def __repr__(self) -> str:
        return (
            f"Token(access_token={mask(self.access_token)}, "
            f"refresh_token={mask(self.refresh_token)}, instance_url={self.instance_url!r}, "
            f"org_id={self.org_id!r}, user_id={self.user_id!r}, scopes={self.scopes!r}, "
            f"issued_at={self.issued_at!r}, expires_at={self.expires_at!r}, "
            f"token_url={self.token_url!r})"
        )

    __str__ = __repr__


def _replace(token: Token, **changes: Any) -> Token:
    from dataclasses import replace

    return replace(token, **changes)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep server-side until the callback.

    ``code_verifier`` and ``nonce`` must be stored server-side (session), never put in a URL.
    """

    url: str = field(repr=False)
    state: str = field(repr=False)
    code_verifier: str | None = field(default=None, repr=False)
    nonce: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    issuer: str | None = None

    def __repr__(self) -> str:
        # The URL's query carries state and nonce: show only where it goes.
        return f"AuthorizationRequest(url={self.url.split('?', 1)[0]!r}, ...)"


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """Leg 1 of Salesforce's device flow. ``device_code`` is a secret: never shown or logged."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    interval: int = 5
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class AssetToken:
    """The signed asset token (a JWT) from the token exchange, with its lifetime and claims."""

    token: str = field(repr=False)
    expires_in: int | None
    claims: Mapping[str, Any] = field(default_factory=dict)
    issued_token_type: str = "urn:ietf:params:oauth:token-type:jwt"
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class Introspection:
    """RFC 7662 introspection result; ``active`` is the one field always present."""

    active: bool
    scopes: tuple[str, ...] = ()
    client_id: str | None = None
    username: str | None = None
    sub: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Identity:
    """The identity URL's answer (Salesforce's user and org description)."""

    id: str
    user_id: str
    organization_id: str
    username: str | None = None
    display_name: str | None = None
    email: str | None = None
    active: bool | None = None
    user_type: str | None = None
    urls: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
