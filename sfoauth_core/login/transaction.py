"""The browser login, written once: options, the pending-login record, begin and complete.

Specs: RFC 6749 §4.1 (authorization code), RFC 7636 (PKCE), RFC 9207 (``iss``), RFC 9700
(security BCP), OpenID Connect Core §3.1.3.7 (ID token, ``nonce``). Rules: SECURITY.md
items 1-7 and 14.

Both adapters run the same transaction; each keeps only what its framework owns (the
browser binding: Django's session, FastAPI's signed cookie; the storage of the pending
record; the mapping of :class:`LoginErrorCode` to its responses)::

    options = read_login_options(next=..., scope=..., prompt=..., login_hint=...,
                                 allowed_scopes=app.scopes)
    url, pending = begin_login(app, options, user=user_id)    # pure: no I/O
    store.put(login_id_for(pending.state), pending)           # adapter: storage
    ... the browser goes to Salesforce and comes back ...
    params = callback_params(query_pairs)                     # one value per name
    pending = store.take(login_id_for(params["state"]))       # adapter: binding
    done = oauth.run(complete_login(app, pending, params, user=user_id,
                                    jwks_cache=oauth.jwks_cache))
    conflict = identity_conflict(done.token, connections_of_this_user_and_identity)
    if conflict: oauth.run(refuse_login(app, done, conflict))  # revokes, raises

:func:`complete_login` is a sans-IO generator like every flow: it yields the token
request (at the token URL recorded when the login began, never one from the callback),
the key-set fetch for the ID token and, when it refuses a grant it already received, the
revocation; the sync and async drivers run it unchanged. Every refusal is a
:class:`LoginError` with a stable :class:`LoginErrorCode`; its message says why without
any value from the request.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, cast

from ..config import ConnectedApp
from ..exceptions import (
    AccessDeniedError,
    ConfigurationError,
    FlowError,
    InvalidClientError,
    InvalidClientIdError,
    MalformedResponseError,
    OAuthProtocolError,
    SFOAuthError,
    StateMismatchError,
    StorageError,
    TransportError,
    app_access_hint,
)
from ..flows import web_server
from ..flows._base import Flow
from ..flows.endpoints import endpoints_for
from ..flows.id_token import verify_id_token
from ..flows.revoke import revoke_token
from ..storage.cipher import TokenCipher
from ..tokens import Token, masked

__all__ = [
    "DEFAULT_LOGIN_TTL",
    "MAX_CALLBACK_PARAMETER",
    "MAX_LOGIN_HINT",
    "MAX_NEXT_LENGTH",
    "CompletedLogin",
    "KnownConnection",
    "LoginError",
    "LoginErrorCode",
    "LoginOptions",
    "PendingLogin",
    "begin_login",
    "complete_login",
    "identity_conflict",
    "read_login_options",
    "refuse_login",
    "safe_next",
]

#: Seconds a started login may wait for its callback (SECURITY.md item 1).
DEFAULT_LOGIN_TTL = 600.0
#: The longest ``login_hint`` accepted: a Salesforce username has at most 80 characters.
MAX_LOGIN_HINT = 80
#: The longest ``next`` kept.
MAX_NEXT_LENGTH = 2048
#: The longest value of a callback parameter (codes and states are far shorter).
MAX_CALLBACK_PARAMETER = 2048


class LoginErrorCode(str, Enum):
    """Why a login was refused: one vocabulary for both adapters.

    Each adapter maps a code to its own answer (Django: the error page named by
    ``sfoauth_django.adapter.ERROR_MESSAGES``; FastAPI: ``sfoauth_fastapi.ErrorCode``),
    so the same failure reads the same in both.
    """

    #: A login option (``scope``, ``prompt``, ``login_hint``, login URL) is refused.
    INVALID_REQUEST = "invalid_request"
    #: Nobody to connect: the visitor must sign in to the app first.
    NOT_AUTHENTICATED = "not_authenticated"
    #: The callback's ``state`` is missing, unknown, used, expired, from another browser
    #: or another user.
    INVALID_STATE = "invalid_state"
    #: The callback repeats or oversizes a parameter, has no code, or a foreign ``iss``.
    INVALID_CALLBACK = "invalid_callback"
    #: The user declined at Salesforce.
    ACCESS_DENIED = "access_denied"
    #: Salesforce redirected back with another ``error``.
    AUTHORIZATION_FAILED = "authorization_failed"
    #: The token endpoint refused the code.
    EXCHANGE_FAILED = "exchange_failed"
    #: The ID token is not the issuer's, or not this login's (``nonce``, ``sub``).
    ID_TOKEN_REJECTED = "id_token_rejected"
    #: Salesforce's answer cannot be trusted or understood (no identity in the token...).
    SALESFORCE_ERROR = "salesforce_error"
    #: Salesforce could not be reached, or failed (5xx, timeouts).
    SALESFORCE_UNAVAILABLE = "salesforce_unavailable"
    #: Salesforce refused the app's own configuration (client id or secret, redirect
    #: URI...): the operator must fix a setting.
    APP_MISCONFIGURED = "app_misconfigured"
    #: Salesforce does not let this user use the app (not installed in the user's org,
    #: no access, IP or login hours): the user's Salesforce admin must change something
    #: (``app_access_hint(failure.cause)`` says what).
    APP_ACCESS_DENIED = "app_access_denied"
    #: This Salesforce user is already connected to another local user (item 7).
    ALREADY_LINKED = "already_linked"
    #: The local user is connected to another Salesforce user (item 7).
    DIFFERENT_ACCOUNT = "different_account"
    #: No local user for this Salesforce user, and the app does not create one.
    SIGNUP_CLOSED = "signup_closed"
    #: The pending-login or token store failed.
    STORAGE_UNAVAILABLE = "storage_unavailable"

    def __str__(self) -> str:
        return self.value


#: Codes that are security events (someone may be tampering): adapters log them as
#: warnings on ``sfoauth.security``.
_SECURITY_EVENTS = frozenset(
    {
        LoginErrorCode.INVALID_STATE,
        LoginErrorCode.INVALID_CALLBACK,
        LoginErrorCode.ID_TOKEN_REJECTED,
        LoginErrorCode.ALREADY_LINKED,
    }
)


class LoginError(SFOAuthError):
    """A login step refused to go on.

    Attributes:
        code: the stable :class:`LoginErrorCode`.
        reason: why, for the logs (never a value from the request or Salesforce).
        cause: the core error behind it, if any (also ``__cause__``).
        step: where it failed: ``"options"``, ``"begin"``, ``"callback"``,
            ``"exchange"``, ``"id_token"`` or ``"identity"`` (for logs that name it).
    """

    def __init__(
        self,
        code: LoginErrorCode,
        reason: str,
        *,
        cause: BaseException | None = None,
        step: str = "",
    ) -> None:
        self.code = code
        self.reason = reason
        self.cause = cause
        self.step = step
        super().__init__(f"{code.value}: {reason}")

    @property
    def is_security_event(self) -> bool:
        """True when the refusal may be an attack (forged, replayed or foreign state,
        tampered callback, foreign ID token, a grant for another user's account)."""
        return self.code in _SECURITY_EVENTS


# -- Options --------------------------------------------------------------------------
def safe_next(candidate: str | None) -> str | None:
    """``candidate`` if it is a same-origin relative path, else ``None`` (item 4).

    Only printable ASCII paths starting with one ``/`` survive: no scheme, no host, no
    ``//`` or ``/\\`` (which browsers read as another host), no backslash, whitespace or
    control character anywhere (browsers strip or rewrite those), at most
    :data:`MAX_NEXT_LENGTH` characters.

    Example:
        >>> safe_next("/reports?id=1"), safe_next("//evil.example.com")
        ('/reports?id=1', None)
    """
    if not isinstance(candidate, str) or not candidate:
        return None
    if len(candidate) > MAX_NEXT_LENGTH:
        return None
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in candidate):
        return None
    if "\\" in candidate or not candidate.startswith("/") or candidate.startswith("//"):
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(candidate)
    except ValueError:  # pragma: no cover - ASCII paths always split
        return None
    if parts.scheme or parts.netloc:
        return None
    return candidate


@dataclass(frozen=True, slots=True)
class LoginOptions:
    """The per-request options of a login, each already checked.

    Build with :func:`read_login_options`; an unsafe ``next`` is ``None`` here (the
    adapter lands on its default page), a refused option never gets this far.
    """

    next_url: str | None = None
    scopes: tuple[str, ...] | None = None
    prompt: str | None = None
    login_hint: str | None = None


def read_login_options(
    *,
    next: str | None = None,  # noqa: A002 - the parameter's public name
    scope: str | None = None,
    prompt: str | None = None,
    login_hint: str | None = None,
    allowed_scopes: Sequence[str] = (),
) -> LoginOptions:
    """Validate the options a browser may choose (query or form values, as sent).

    Args:
        next: where to go after the login; kept only if :func:`safe_next` accepts it.
        scope: space-separated scopes narrowing ``allowed_scopes`` (never widening them,
            SECURITY.md item 28).
        prompt: ``login``, ``consent`` and/or ``select_account``.
        login_hint: the username to prefill (printable, at most :data:`MAX_LOGIN_HINT`).
        allowed_scopes: the configured scopes a request may pick from.

    Empty values count as absent.

    Raises:
        LoginError: ``INVALID_REQUEST`` for a refused option.
    """
    scopes: tuple[str, ...] | None = None
    if scope:
        scopes = tuple(scope.split())
        if not scopes or any(s not in allowed_scopes for s in scopes):
            raise LoginError(
                LoginErrorCode.INVALID_REQUEST,
                "scope outside the configured scopes",
                step="options",
            )
    if prompt:
        words = prompt.split()
        if not words or not set(words) <= web_server._PROMPTS:
            raise LoginError(
                LoginErrorCode.INVALID_REQUEST, "unknown prompt", step="options"
            )
        prompt = " ".join(words)
    if login_hint and (
        len(login_hint) > MAX_LOGIN_HINT or not login_hint.isprintable()
    ):
        raise LoginError(
            LoginErrorCode.INVALID_REQUEST, "unusable login_hint", step="options"
        )
    return LoginOptions(
        next_url=safe_next(next),
        scopes=scopes,
        prompt=prompt or None,
        login_hint=login_hint or None,
    )


# -- The pending login ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A started login, remembered server-side until its callback (items 1, 2, 5).

    Attributes:
        state: the ``state`` sent to Salesforce (256 bits from ``secrets``).
        code_verifier: the PKCE verifier (S256), never sent to the browser.
        nonce: the OpenID nonce, when ``openid`` was asked for.
        issuer: the authorization server the browser was sent to (its ``iss``).
        token_url: where the code is exchanged: the issuer's token endpoint, recorded
            now, never taken from the callback.
        redirect_uri: the callback URL the authorization used.
        next_url: the checked same-origin path to return to (``None``: the default).
        user: who started the login (``None``: nobody signed in yet); the callback must
            come from the same user.
        expires_at: epoch seconds after which the login is refused.
    """

    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str | None = field(default=None, repr=False)
    issuer: str = ""
    token_url: str = ""
    redirect_uri: str = ""
    next_url: str | None = None
    user: str | None = field(default=None, repr=False)
    expires_at: float = 0.0

    def __post_init__(self) -> None:
        # Masked in frame locals, tracebacks and debug pages (issue 13).
        for name in ("state", "code_verifier", "nonce"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, masked(value))

    def is_expired(self, now: float | None = None) -> bool:
        """True once the login's lifetime is over."""
        return (time.time() if now is None else now) >= self.expires_at

    def to_bytes(self) -> bytes:
        """JSON form; encrypt it (:meth:`seal`) before it leaves the process."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingLogin:
        """Inverse of :meth:`to_bytes`.

        Raises:
            StorageError: not a pending-login record.
        """
        try:
            payload = json.loads(data)
            if not isinstance(payload, Mapping):
                raise TypeError("not an object")
            nonce = payload.get("nonce")
            user = payload.get("user", payload.get("user_key"))  # 0.x FastAPI records
            issuer = str(payload.get("issuer") or "").rstrip("/")
            token_url = payload.get("token_url") or (
                endpoints_for(issuer).token if issuer else ""
            )
            return cls(
                state=str(payload["state"]),
                code_verifier=str(payload["code_verifier"]),
                nonce=None if nonce is None else str(nonce),
                issuer=issuer,
                token_url=str(token_url),
                redirect_uri=str(payload.get("redirect_uri") or ""),
                next_url=safe_next(payload.get("next_url")),
                user=None if user is None else str(user),
                expires_at=float(payload["expires_at"]),
            )
        except (KeyError, TypeError, ValueError):
            raise StorageError("stored pending login is malformed") from None

    def seal(self, cipher: TokenCipher, login_id: str) -> str:
        """The record encrypted with the token cipher, bound to ``login_id`` (a record
        copied under another id does not decrypt)."""
        return cipher.encrypt(self.to_bytes(), context=_context(login_id))

    @classmethod
    def unseal(cls, cipher: TokenCipher, login_id: str, sealed: str) -> PendingLogin:
        """Inverse of :meth:`seal`.

        Raises:
            StorageError: the record does not decrypt under this id, or is malformed.
        """
        try:
            data = cipher.decrypt(sealed, context=_context(login_id))
        except SFOAuthError as exc:
            raise StorageError("stored pending login cannot be decrypted") from exc
        return cls.from_bytes(data)


def _context(login_id: str) -> str:
    # The context sfoauth_fastapi's stores always used: records written before the
    # transaction moved to the core still open.
    return f"sfoauth-flow:{login_id}"


# -- Begin ----------------------------------------------------------------------------
def begin_login(
    app: ConnectedApp,
    options: LoginOptions,
    *,
    user: str | None,
    scopes: Sequence[str] | None = None,
    ttl: float = DEFAULT_LOGIN_TTL,
    force_consent: bool = False,
    now: float | None = None,
) -> tuple[str, PendingLogin]:
    """Start a login at ``app.login_url``: the authorize URL and the record to keep.

    Pure (no I/O). ``state``, the PKCE verifier and the nonce come from ``secrets``; the
    record names the issuer and its token endpoint, so the callback exchanges the code
    where the browser was sent, whatever it carries.

    Args:
        app: the connected app, its ``login_url`` the login host the user picked.
        options: from :func:`read_login_options`.
        user: who is starting the login (``None``: an anonymous sign-in).
        scopes: the application's own scope choice, used when the request picked none
            (default: the app's scopes).
        ttl: seconds the callback may take.
        force_consent: add ``prompt=consent`` (a login another site started must not
            link an account silently, item 7).

    Raises:
        LoginError: ``INVALID_REQUEST`` when the app cannot start a browser login
            (no ``redirect_uri``...); the :class:`ConfigurationError` is the cause.
    """
    prompt = options.prompt
    if force_consent:
        prompt = " ".join(sorted({*(prompt or "").split(), "consent"}))
    chosen = options.scopes if options.scopes is not None else scopes
    try:
        auth = web_server.prepare_authorization_url(
            app,
            scopes=None if chosen is None else tuple(chosen),
            prompt=prompt,
            login_hint=options.login_hint,
        )
    except ConfigurationError as exc:
        raise LoginError(
            LoginErrorCode.INVALID_REQUEST,
            f"the app cannot start a login ({exc.setting})",
            cause=exc,
            step="begin",
        ) from exc
    code_verifier = cast("str", auth.code_verifier)  # PKCE is always on for this flow
    issuer = (auth.issuer or app.login_url).rstrip("/")
    pending = PendingLogin(
        state=auth.state,
        code_verifier=code_verifier,
        nonce=auth.nonce,
        issuer=issuer,
        token_url=endpoints_for(issuer).token,
        redirect_uri=auth.redirect_uri or app.redirect_uri or "",
        next_url=options.next_url,
        user=user,
        expires_at=(time.time() if now is None else now) + ttl,
    )
    return masked(auth.url), pending


# -- Complete -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CompletedLogin:
    """A checked login: the token and what the callback's record said."""

    token: Token
    pending: PendingLogin
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def next_url(self) -> str | None:
        """The checked ``next`` recorded at the start (``None``: the default page)."""
        return self.pending.next_url

    @property
    def username(self) -> str | None:
        """The Salesforce username from the verified ID token, when there was one."""
        value = self.claims.get("preferred_username")
        return value if isinstance(value, str) and value else None


def _is_misconfiguration(exc: BaseException) -> bool:
    return isinstance(
        exc, (InvalidClientError, InvalidClientIdError, ConfigurationError)
    )


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, MalformedResponseError):
        return (exc.status_code or 0) >= 500  # an HTML maintenance page, a 503
    return isinstance(exc, TransportError)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _check_callback(
    pending: PendingLogin, params: Mapping[str, str], user: str | None, now: float
) -> str:
    """The record and the callback agree: returns the code."""
    if pending.is_expired(now):
        raise LoginError(LoginErrorCode.INVALID_STATE, "state expired", step="callback")
    if pending.user is not None and (user is None or not _same(pending.user, user)):
        raise LoginError(
            LoginErrorCode.INVALID_STATE,
            "the user changed since the login started",
            step="callback",
        )
    if any(len(v) > MAX_CALLBACK_PARAMETER for v in params.values()):
        raise LoginError(
            LoginErrorCode.INVALID_CALLBACK, "oversized parameter", step="callback"
        )
    try:
        return web_server.parse_authorization_response(
            dict(params),
            expected_state=pending.state,
            expected_issuer=pending.issuer or None,
        )
    except AccessDeniedError as exc:
        raise LoginError(
            LoginErrorCode.ACCESS_DENIED,
            "the user declined",
            cause=exc,
            step="callback",
        ) from exc
    except OAuthProtocolError as exc:
        if app_access_hint(exc) is not None:
            code = LoginErrorCode.APP_ACCESS_DENIED
        elif _is_misconfiguration(exc):
            code = LoginErrorCode.APP_MISCONFIGURED
        else:
            code = LoginErrorCode.AUTHORIZATION_FAILED
        raise LoginError(
            code,
            f"Salesforce refused the authorization ({exc.error})",
            cause=exc,
            step="callback",
        ) from exc
    except FlowError as exc:
        code = (
            LoginErrorCode.INVALID_STATE
            if isinstance(exc, StateMismatchError)
            else LoginErrorCode.INVALID_CALLBACK
        )
        raise LoginError(code, type(exc).__name__, cause=exc, step="callback") from exc


def _exchange_failure(exc: SFOAuthError) -> LoginError:
    if _is_unavailable(exc):
        code = LoginErrorCode.SALESFORCE_UNAVAILABLE
    elif app_access_hint(exc) is not None:
        code = LoginErrorCode.APP_ACCESS_DENIED
    elif _is_misconfiguration(exc):
        code = LoginErrorCode.APP_MISCONFIGURED
    elif isinstance(exc, OAuthProtocolError):
        code = LoginErrorCode.EXCHANGE_FAILED
    else:
        code = LoginErrorCode.SALESFORCE_ERROR
    return LoginError(
        code,
        f"code exchange failed: {type(exc).__name__}",
        cause=exc,
        step="exchange",
    )


def _issuer_app(app: ConnectedApp, pending: PendingLogin) -> ConnectedApp:
    """``app`` at the login's issuer (a My Domain, sandbox or site the user picked)."""
    if not pending.issuer or pending.issuer == app.login_url.rstrip("/"):
        return app
    return app.replace(login_url=pending.issuer)


def _revoke_quietly(
    app: ConnectedApp, pending: PendingLogin, token: Token
) -> Flow[bool]:
    """Give an unusable grant back (best effort) at the host that issued it (its
    ``token_url``); True when Salesforce confirmed."""
    try:
        yield from revoke_token(_issuer_app(app, pending), token)
    except SFOAuthError:
        return False
    return True


def complete_login(
    app: ConnectedApp,
    pending: PendingLogin,
    params: Mapping[str, str],
    *,
    user: str | None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]],
    now: float | None = None,
) -> Flow[CompletedLogin]:
    """Finish a login: check the callback against its record, exchange, verify.

    In order: the record is unexpired and was started by ``user``; the callback's
    ``state`` equals the record's (constant time), its ``iss`` (when present) is the
    recorded issuer, it carries a code and no ``error``; the code is exchanged with the
    recorded verifier and ``redirect_uri`` at the recorded token URL; the token names a
    Salesforce org and user; an ID token (when the login asked for ``openid``) is signed
    by the issuer and carries this login's ``nonce``. A grant received and then refused
    is revoked before the failure is raised.

    Args:
        app: the connected app (its client id and secret; the login host comes from the
            record).
        pending: the record, already taken from the store (single use).
        params: the callback's query, one value per name
            (:func:`~sfoauth_core.flows.web_server.callback_params`).
        user: who is finishing the login (``None``: nobody signed in).
        jwks_cache: the key-set cache of the OAuth client (``oauth.jwks_cache``).

    Raises:
        LoginError: every refusal, with its code; nothing was kept.
    """
    when = time.time() if now is None else now
    code = _check_callback(pending, params, user, when)
    issuer_app = _issuer_app(app, pending)
    try:
        token = yield from web_server.exchange_code(
            issuer_app,
            code,
            code_verifier=pending.code_verifier,
            redirect_uri=pending.redirect_uri or None,
            token_url=pending.token_url or None,
        )
    except SFOAuthError as exc:
        raise _exchange_failure(exc) from exc
    if not token.org_id or not token.user_id:
        yield from _revoke_quietly(app, pending, token)
        raise LoginError(
            LoginErrorCode.SALESFORCE_ERROR,
            "the token names no org or user",
            step="exchange",
        )
    claims: dict[str, Any] = {}
    if token.id_token and pending.nonce:
        try:
            claims = yield from verify_id_token(
                issuer_app,
                token,
                nonce=pending.nonce,
                issuer=pending.issuer or None,
                jwks_cache=jwks_cache,
            )
        except SFOAuthError as exc:
            yield from _revoke_quietly(app, pending, token)
            failure_code = (
                LoginErrorCode.SALESFORCE_UNAVAILABLE
                if _is_unavailable(exc)
                else LoginErrorCode.ID_TOKEN_REJECTED
            )
            raise LoginError(
                failure_code,
                f"ID token {type(exc).__name__}",
                cause=exc,
                step="id_token",
            ) from exc
    return CompletedLogin(token=token, pending=pending, claims=claims)


# -- Identity rule --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KnownConnection:
    """A stored connection the new grant might collide with.

    Attributes:
        org_id: its Salesforce org.
        user_id: its Salesforce user.
        mine: whether it belongs to the local user finishing the login.
    """

    org_id: str
    user_id: str
    mine: bool


def identity_conflict(
    token: Token,
    connections: Iterable[KnownConnection],
    *,
    one_per_user: bool = False,
) -> LoginErrorCode | None:
    """The identity rule (SECURITY.md item 7): what a new grant may not do.

    * A Salesforce user connected to another local user is not taken over:
      ``ALREADY_LINKED``.
    * A local user's connection is never replaced by another Salesforce user of the
      same org (of any org with ``one_per_user``, for bindings that keep one connection
      per user): ``DIFFERENT_ACCOUNT``.

    Ids compare exactly (case-sensitive, SECURITY.md item 18). Returns ``None`` when the
    grant may be stored.

    Args:
        token: the new grant.
        connections: the stored connections of this Salesforce identity and of this
            local user (others are ignored).
    """
    for known in connections:
        same_identity = known.org_id == token.org_id and known.user_id == token.user_id
        if same_identity and not known.mine:
            return LoginErrorCode.ALREADY_LINKED
        if known.mine and not same_identity:
            if one_per_user or known.org_id == token.org_id:
                return LoginErrorCode.DIFFERENT_ACCOUNT
    return None


def refuse_login(
    app: ConnectedApp,
    grant: CompletedLogin | Token,
    code: LoginErrorCode,
    reason: str = "",
) -> Flow[None]:
    """Give a checked grant back to Salesforce, then raise ``LoginError``.

    For refusals decided after :func:`complete_login` (the identity rule, a closed
    sign-up) or after another grant that links a user (a token exchange): the new grant
    is revoked (best effort) at the host that issued it, so nothing is left usable.

    Raises:
        LoginError: always, with ``code``.
    """
    if isinstance(grant, CompletedLogin):
        yield from _revoke_quietly(app, grant.pending, grant.token)
    else:
        try:
            yield from revoke_token(app, grant)
        except SFOAuthError:
            pass
    raise LoginError(code, reason or code.value.replace("_", " "), step="identity")
