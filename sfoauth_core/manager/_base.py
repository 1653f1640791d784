"""The token lifecycle, decided once: plans that the sync and async managers run.

Every decision (re-read after the lock, compare with the stale token, refresh or
re-mint, save before unlocking, what ``invalid_grant`` means, fencing conflicts, events)
lives in the generator methods of :class:`BaseTokenManager`. A plan yields small
operation values (:class:`_Read`, :class:`_Save`, :class:`_Call`...) and gets their
results back; errors are thrown back in at the ``yield``. :class:`~._sync.TokenManager`
and :class:`~._async.AsyncTokenManager` only perform the operations (store calls, flow
runs, hooks) and hold the locks, so the two stay a few lines per method (STYLE.md
C1/C3).

Why the rules are what they are (ARCHITECTURE.md "Token lifecycle", SECURITY.md 21-26):

* Salesforce sends no ``expires_in``, so expiry is usually learned from a 401
  ``INVALID_SESSION_ID``; the failing access token is passed as ``stale``.
* With refresh-token rotation a refresh token works once and replaying it revokes the
  grant, so refreshes are single-flight per connection (in-process lock, then the
  store's lock), the store is re-read after locking, and no call is made when the stored
  access token already differs from the stale one.
* The rotated refresh token is saved with a compare-and-swap on the version read under
  the lock, before the lock is released. A holder whose lease ran out is fenced off.
* ``invalid_grant`` marks the connection ``needs_reauth`` (row kept) only if the store
  still holds what was presented; 5xx/429/timeouts leave the record untouched.
* A refresh presenting a refresh token is announced first: a "refresh in flight" marker
  (when, and a digest of the refresh token) is written with a compare-and-swap and made
  durable under the store's lock, and the lock is released before Salesforce is called.
  The marker, not the lock, keeps a second refresher from presenting the same refresh
  token while the first may still be in flight: it survives the refresher's death, the
  loss of its database session and of its lock. Whoever finds a young marker watches the
  store for the holder's result (saved with a compare-and-swap on the marker's version)
  and refreshes itself only once :attr:`BaseTokenManager.refresh_window` has passed.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from cachetools import TTLCache

from .._plans import relay
from ..auth import Renewal, _Fetch, _renewing
from ..config import ConnectedApp
from ..events import TokenEvent, TokenEvents
from ..exceptions import (
    ConfigurationError,
    InvalidGrantError,
    InvalidTokenError,
    ReauthorizationRequired,
    RefreshInProgressError,
    SalesforceUnavailableError,
    SFOAuthError,
    StorageError,
    TokenNotFoundError,
    TransportError,
)
from ..flows import (
    client_credentials,
    identity,
    introspect,
    jwt_bearer,
    revoke,
    token_exchange,
    userinfo,
)
from ..flows._base import NO_RETRY, Flow, HttpRequest, HttpResponse, RetryPolicy, Wait
from ..flows.access_token import is_jwt_access_token, verify_access_token
from ..flows.jwks import JwksCache
from ..flows.refresh import DEFAULT_REFRESH_RETRY, refresh_token
from ..storage.base import (
    MINTED_GRANTS,
    TokenRecord,
    VersionConflictError,
    refresh_digest,
)
from ..tokens import Identity, Introspection, Token

__all__ = ["BaseTokenManager", "OAuthClient"]

logger = logging.getLogger("sfoauth.manager")
security_log = logging.getLogger("sfoauth.security")

T = TypeVar("T")
L = TypeVar("L")
O = TypeVar("O", bound="OAuthClient")  # noqa: E741 - the oauth client's type
S = TypeVar("S")  # the store's type

#: Seconds before a known expiry at which the token is refreshed.
DEFAULT_LEEWAY = 60.0
#: Pauses after Salesforce refused a refresh because another refresh of the same refresh
#: token was being processed (reference 15.1): the store is re-read after each (a
#: sibling's write ends the wait); one more try follows only when nothing changed. The
#: whole stays within :meth:`worst_case_refresh_seconds`.
CONCURRENT_REFRESH_PAUSES = (0.25, 0.5, 1.0, 2.0)
#: Seconds added to the app's HTTP timeout twice over for the default
#: :attr:`~BaseTokenManager.refresh_window`: a refresh request may reach Salesforce late
#: and be processed after the client gave up (its timeout), and the holder then needs a
#: moment to save the answer.
DEFAULT_REFRESH_MARGIN = 5.0
#: Pauses between reads of the store while another refresher's marker is young.
MARKER_WATCH_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
#: At most this long (and at most the app's HTTP timeout) a caller watches another
#: refresher's marker before it gets :class:`SalesforceUnavailableError` (a 503).
MARKER_WATCH_LIMIT = 5.0
#: Pauses before writing a renewed token again when the store failed at the write
#: (e.g. the database session was terminated while the refresh was at Salesforce).
SAVE_RETRY_PAUSES = (0.1, 0.5, 1.0, 2.0)
#: How many times a refresher takes the store's lock to claim a refresh (the first may
#: find another's marker; after watching it, it claims again).
_CLAIMS = 3
#: The stored grant of a connection obtained by :meth:`exchange` (reference 15.8).
TOKEN_EXCHANGE = "token_exchange"
#: Seconds a token stays in the in-process cache before the store is consulted again.
DEFAULT_CACHE_TTL = 300.0
_FOREVER = float("inf")


class OAuthClient(Protocol):
    """What the manager needs from ``SalesforceOAuth`` / ``AsyncSalesforceOAuth``
    besides running flows: the app it builds every flow from, and the client's key set
    cache (ID tokens in refresh answers are verified with it)."""

    app: ConnectedApp

    @property
    def jwks_cache(self) -> JwksCache: ...


# Operations a plan asks its runner to perform ---------------------------------------
@dataclass(frozen=True, slots=True)
class _Read:
    key: str


@dataclass(frozen=True, slots=True)
class _Save:
    key: str
    token: Token
    grant: str
    username: str | None
    expected_version: int | None


@dataclass(frozen=True, slots=True)
class _Mark:
    key: str
    reason: str
    expected_version: int


@dataclass(frozen=True, slots=True)
class _Delete:
    key: str


@dataclass(frozen=True, slots=True)
class _SetMarker:
    key: str
    digest: str | None
    expected_version: int


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    flow: Flow[T]


@dataclass(frozen=True, slots=True)
class _Emit:
    event: TokenEvent


_Op = _Read | _Save | _Mark | _Delete | _SetMarker | _Call[Any] | _Emit | _Fetch
Plan = Generator[_Op, Any, T]


@dataclass(frozen=True, slots=True)
class _Pending:
    """A renewed token the store could not take (it was down); written on next
    access."""

    version: int
    token: Token
    grant: str
    username: str | None


@dataclass(frozen=True, slots=True)
class _Claimed:
    """Under the store's lock, this refresher wrote its marker (``record`` carries it);
    it calls Salesforce after the lock is released."""

    record: TokenRecord


@dataclass(frozen=True, slots=True)
class _InFlight:
    """Under the store's lock, another refresher's young marker was found (``record``
    carries it); this one watches the store instead of presenting the refresh token."""

    record: TokenRecord


def _pause(seconds: float) -> Flow[None]:
    """A flow that only waits (the driver sleeps, sync or async)."""
    yield Wait(seconds)


def _send(request: HttpRequest) -> Flow[HttpResponse]:
    """A flow of one request: lets a plan drive a flow one request at a time."""
    response = yield request
    if not isinstance(response, HttpResponse):  # pragma: no cover - driver contract
        raise TypeError(f"expected an HttpResponse, got {type(response).__name__}")
    return response


def _access_token_of(stale: Token | str | None) -> str | None:
    return stale.access_token if isinstance(stale, Token) else stale


def _refused_token(exc: InvalidTokenError) -> bool:
    """A refusal a renewal can fix: 401, or 403 ``Bad_OAuth_Token`` (identity URL,
    userinfo); another 403 (e.g. a missing permission) is passed on at once."""
    if exc.status_code == 401:
        return True
    return exc.status_code == 403 and exc.description.strip() == "Bad_OAuth_Token"


def _watch(flow: Flow[T], notes: list[str]) -> Flow[T]:
    """Pass a flow through, noting transport failures and 5xx/429 answers it retried.

    An ``invalid_grant`` that follows a lost answer is the signature of a dropped
    rotation: the first attempt rotated the refresh token and the retry replayed the old
    one. Knowing it lets the re-authorization reason say so.
    """

    def observed(step: HttpRequest | Wait) -> Generator[Any, Any, Any]:
        try:
            value = yield step
        except TransportError:
            notes.append("no answer")
            raise  # thrown on into the flow, which may retry
        if isinstance(value, HttpResponse) and (
            value.status_code >= 500 or value.status_code == 429
        ):
            notes.append(f"HTTP {value.status_code}")
        return value

    return relay(flow, observed, throws=TransportError)


class BaseTokenManager(Generic[L, O, S]):
    """Configuration, the in-process cache and the lifecycle plans; no I/O.

    ``L`` is the type of the per-key in-process lock (``threading.Lock`` for the sync
    manager, ``anyio.Lock`` for the async one), ``O`` the OAuth client's and ``S`` the
    store's. The constructor is shared by both managers (their docstrings list the
    arguments); the store's ``lock_timeout`` (its lease) is checked against a refresh.
    """

    def __init__(
        self,
        oauth: O,
        store: S,
        *,
        events: TokenEvents | None = None,
        retry: RetryPolicy | None = None,
        leeway: float = DEFAULT_LEEWAY,
        session_timeout: float | None = None,
        introspect_expiry: bool = False,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = 10_000,
        lock_wait: float = 300.0,
        clock: Callable[[], float] = time.time,
        refresh_window: float | None = None,
    ) -> None:
        if session_timeout is not None and session_timeout <= 0:
            raise ConfigurationError(
                "session_timeout", "must be a positive number of seconds"
            )
        if leeway < 0:
            raise ConfigurationError("leeway", "must not be negative")
        if refresh_window is not None and refresh_window <= 0:
            raise ConfigurationError(
                "refresh_window", "must be a positive number of seconds"
            )
        if session_timeout is not None and leeway >= session_timeout:
            raise ConfigurationError("leeway", "must be shorter than session_timeout")
        self.oauth: O = oauth
        self.store: S = store
        self.events = events if events is not None else TokenEvents()
        self.retry = retry if retry is not None else DEFAULT_REFRESH_RETRY
        self.leeway = float(leeway)
        self.session_timeout = session_timeout
        self.introspect_expiry = introspect_expiry
        self.lock_wait = lock_wait
        #: Seconds after a refresh request was announced (its marker) during which no
        #: other refresher presents the same refresh token: by then the request has
        #: been answered or given up at Salesforce. Default: twice the app's HTTP
        #: timeout plus :data:`DEFAULT_REFRESH_MARGIN`.
        self.refresh_window = float(
            refresh_window
            if refresh_window is not None
            else 2 * oauth.app.timeout + DEFAULT_REFRESH_MARGIN
        )
        self._clock = clock
        self._cache: TTLCache[str, tuple[Token, float]] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl
        )
        self._guard = threading.Lock()
        self._locks: dict[str, L] = {}
        self._loop_locks: weakref.WeakKeyDictionary[object, dict[str, L]] = (
            weakref.WeakKeyDictionary()
        )
        self._pending: dict[str, _Pending] = {}
        self._check_lease(getattr(store, "lock_timeout", None))

    # Configuration checks -------------------------------------------------------------
    def worst_case_refresh_seconds(self) -> float:
        """Upper bound of one refresh: every attempt timing out, plus the back-off."""
        policy = self.retry
        timeout = self.oauth.app.timeout
        seconds = policy.attempts * timeout
        seconds += (policy.attempts - 1) * max(policy.max_delay, policy.max_retry_after)
        if self.introspect_expiry:
            seconds += timeout
        return seconds

    def _check_lease(self, lease: float | None) -> None:
        # SECURITY.md item 23: a lease shorter than the refresh lets a second holder in
        # while the first is still talking to Salesforce, and with rotation the second
        # refresh replays a dead token.
        if lease is None:
            return
        worst = self.worst_case_refresh_seconds()
        if lease <= worst:
            raise ConfigurationError(
                "lock_timeout",
                f"the store's lock lease ({lease:g} s) must outlast a whole refresh "
                f"({worst:g} s: {self.retry.attempts} attempt(s) x "
                f"{self.oauth.app.timeout:g} s timeout plus back-off); raise the "
                "store's lock_timeout, or lower the app timeout or retry attempts",
            )

    # In-process cache: the hot path ------------------------------------------------
    def _cached_token(self, key: str) -> Token | None:
        # No lock, no I/O: TTLCache reads are safe against our guarded writes except
        # for a KeyError when an entry expires concurrently: that means "not cached".
        try:
            token, refresh_at = self._cache[key]
        except KeyError:
            return None
        if refresh_at is _FOREVER or self._clock() < refresh_at:
            return token
        return None

    def _refresh_at(self, token: Token) -> float:
        if token.expires_at is None:
            return _FOREVER
        return token.expires_at - self.leeway

    def _is_due(self, token: Token) -> bool:
        return token.expires_at is not None and self._clock() >= self._refresh_at(token)

    def _remember(self, key: str, token: Token) -> None:
        with self._guard:
            self._cache[key] = (token, self._refresh_at(token))

    def _forget(self, key: str) -> None:
        with self._guard:
            self._cache.pop(key, None)

    def _fresh_sibling(self, key: str, stale: str | None) -> Token | None:
        """A cached token another task of this process already renewed, if any."""
        if stale is None or key in self._pending:
            return None  # a pending write must reach the store first
        token = self._cached_token(key)
        if token is not None and token.access_token != stale:
            return token
        return None

    def _local_lock(
        self, key: str, factory: Callable[[], L], *, scope: object | None = None
    ) -> L:
        """This process's lock for ``key``; with ``scope`` (an event loop), one per
        scope: an async lock belongs to its loop (waiters are futures of that loop)."""
        locks = self._locks if scope is None else self._scoped_locks(scope)
        lock = locks.get(key)
        if lock is None:
            with self._guard:
                lock = locks.get(key)
                if lock is None:
                    lock = locks[key] = factory()
        return lock

    def _scoped_locks(self, scope: object) -> dict[str, L]:
        with self._guard:
            locks = self._loop_locks.get(scope)
            if locks is None:
                locks = self._loop_locks[scope] = {}
            return locks

    def forget(self, key: str) -> None:
        """Drop ``key`` from the in-process cache (the store is untouched)."""
        self._forget(key)

    def may_receive_token(self, host: str, token: Token) -> bool:
        """True if a request to ``host`` may carry ``token`` (its instance or a trusted
        Salesforce host of the app)."""
        host = host.lower()
        if token.instance_url and host == (urlsplit(token.instance_url).hostname or ""):
            return True
        return self.oauth.app.trusts_host(host)

    # Plans ----------------------------------------------------------------------------
    def _usable(self, key: str, record: TokenRecord | None) -> TokenRecord:
        if record is None:
            self._forget(key)
            raise TokenNotFoundError(f"no token is stored for connection {key!r}")
        if record.needs_reauth:
            self._forget(key)
            raise ReauthorizationRequired(
                f"connection {key!r} needs a new login: {record.reason}",
                reason=record.reason,
            )
        return record

    def _load_plan(self, key: str) -> Plan[tuple[Token, bool]]:
        """Cache miss: read the store without locking. Returns (token, needs
        renewal)."""
        record = self._usable(key, (yield _Read(key)))
        if self._is_due(record.token):
            return record.token, True
        self._remember(key, record.token)
        return record.token, False

    def _with_expiry(self, token: Token) -> Plan[Token]:
        if token.expires_at is not None:
            return token
        if is_jwt_access_token(token.access_token):
            expiry = yield from self._jwt_expiry(token)
            if expiry is not None:
                return token.with_expiry(expiry)
        if self.session_timeout is not None:
            issued = token.issued_at if token.issued_at is not None else self._clock()
            return token.with_expiry(issued + self.session_timeout)
        if self.introspect_expiry:
            try:
                info = yield _Call(
                    introspect.introspect_token(
                        self.oauth.app, token, hint="access_token"
                    )
                )
            except SFOAuthError as exc:
                logger.info("introspection for expiry failed: %s", type(exc).__name__)
                return token
            if isinstance(info, Introspection) and info.active and info.exp:
                return token.with_expiry(float(info.exp))
        return token

    def _jwt_expiry(self, token: Token) -> Plan[float | None]:
        """Reference 15.9: the ``exp`` of a JWT-format access token, once its signature
        verifies against the issuer's keys; ``None`` (not trusted) otherwise."""
        try:
            claims = yield _Call(
                verify_access_token(
                    self.oauth.app, token, jwks_cache=self.oauth.jwks_cache
                )
            )
        except SFOAuthError as exc:
            security_log.warning(
                "a JWT access token did not verify (%s): its expiry is not trusted",
                type(exc).__name__,
            )
            return None
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            return None
        return float(exp)

    def _renew_flow(
        self,
        grant: str,
        username: str | None,
        token: Token | None,
        notes: list[str],
        retry: RetryPolicy | None = None,
    ) -> Flow[Token]:
        if grant == "jwt_bearer":
            return jwt_bearer.jwt_bearer(self.oauth.app, username=username)
        if grant == "client_credentials":
            return client_credentials.client_credentials(self.oauth.app)
        if token is None:  # pragma: no cover - callers pass the stored token
            raise TypeError("a refresh needs the stored token")
        flow = refresh_token(
            self.oauth.app,
            token,
            retry=retry or self.retry,
            # The client's rate-limited key cache verifies an ID token in the answer.
            jwks_cache=self.oauth.jwks_cache,
        )
        return _watch(flow, notes)

    def _flush_pending(self, key: str) -> Plan[None]:
        with self._guard:
            pending = self._pending.pop(key, None)
        if pending is None:
            return
        try:
            yield _Save(
                key, pending.token, pending.grant, pending.username, pending.version
            )
        except VersionConflictError:
            logger.warning("unsaved renewal of %r was superseded in the store", key)
        except StorageError:
            with self._guard:
                self._pending.setdefault(key, pending)
            raise

    def _after_conflict(self, key: str) -> Plan[Token]:
        # Someone wrote a newer record while we held (or thought we held) the lock: the
        # store wins, whatever we got from Salesforce is dropped.
        record = self._usable(key, (yield _Read(key)))
        self._remember(key, record.token)
        return record.token

    def _refresh_plan(
        self, key: str, stale: str | None
    ) -> Plan[Renewal | _Claimed | _InFlight]:
        """The critical section: runs while the in-process and store locks are held.

        Returns a :class:`Renewal` when no refresh token is presented (a sibling had
        renewed, a minted grant re-minted, a connection flagged), else the claim: this
        refresher's marker is written (:class:`_Claimed`), or another's young marker
        was found (:class:`_InFlight`). The runner releases the store's lock, then runs
        :meth:`_claimed_plan` or :meth:`_watch_plan`.
        """
        yield from self._flush_pending(key)
        record = self._usable(key, (yield _Read(key)))
        current = record.token
        if (
            stale is not None
            and current.access_token != stale
            and not self._is_due(current)
        ):
            # A sibling (thread, task, process) renewed it: no call (SECURITY 22).
            # Whether that token is still good is unknown; a caller whose retry is
            # refused again renews past it (auth._renewing).
            self._remember(key, current)
            return Renewal(current, at_salesforce=False)
        if record.is_minted or not current.refresh_token:
            # No refresh token is presented: nothing can be replayed.
            return Renewal(
                (yield from self._renew_plan(key, record)), at_salesforce=True
            )
        digest = refresh_digest(current.refresh_token)
        if record.refresh_in_flight(digest, time.time(), self.refresh_window):
            return _InFlight(record)
        try:
            marked: TokenRecord = yield _SetMarker(key, digest, record.version)
        except VersionConflictError:
            # Written by someone else since the read (a lease ran out): watch it.
            return _InFlight(record)
        return _Claimed(marked)

    def _claimed_plan(self, key: str, claim: _Claimed) -> Plan[Renewal]:
        """After the store's lock is released: refresh under this refresher's marker."""
        token = yield from self._renew_plan(key, claim.record, claimed=True)
        return Renewal(token, at_salesforce=True)

    def _watch_plan(self, key: str, record: TokenRecord) -> Plan[Renewal | None]:
        """Another refresher's marker is young: watch the store, never Salesforce.

        Returns the token the holder saved, or ``None`` when this refresher may claim
        the refresh itself (the window has passed, or the holder cleared its marker
        after an answer that carried no token).

        Raises:
            SalesforceUnavailableError: the holder neither saved nor gave up within
                :data:`MARKER_WATCH_LIMIT` (at most the app's HTTP timeout): a refresh
                still in flight, or a holder that died. The connection is kept; try
                again shortly.
        """
        digest = record.refresh_digest
        waited = 0.0
        pauses = iter(MARKER_WATCH_PAUSES)
        while True:
            started = cast("float", record.refresh_started_at)  # a marker is set
            left = started + self.refresh_window - time.time()
            if left <= 0:
                return None  # whatever was in flight has finished at Salesforce
            budget = min(self.oauth.app.timeout, MARKER_WATCH_LIMIT) - waited
            if budget <= 0:
                raise SalesforceUnavailableError(
                    f"a refresh of {key!r} that started elsewhere may still be in "
                    "flight at Salesforce; presenting its refresh token again could "
                    "revoke the grant. The connection is kept: try again in "
                    f"{max(1, round(left))} s"
                )
            pause = min(next(pauses, MARKER_WATCH_PAUSES[-1]), left, budget)
            logger.info("refresh of %r is in flight elsewhere; watching the store", key)
            yield _Call(_pause(pause))
            waited += pause
            latest = self._usable(key, (yield _Read(key)))
            if latest.version == record.version:
                continue
            if latest.token != record.token:
                self._remember(key, latest.token)
                return Renewal(latest.token, at_salesforce=False)
            if not latest.refresh_in_flight(digest, time.time(), self.refresh_window):
                return None  # answered without a new token: claim it ourselves
            record = latest  # the holder is retrying (it stamped its marker again)

    def _claims_exhausted(self, key: str) -> SalesforceUnavailableError:
        return SalesforceUnavailableError(
            f"the refresh of {key!r} kept being claimed by other refreshers; the "
            "connection is kept, try again shortly"
        )

    def _renew_plan(
        self, key: str, record: TokenRecord, *, claimed: bool = False
    ) -> Plan[Token]:
        """Renew ``record``'s token at Salesforce and save it.

        With ``claimed``, ``record`` carries this refresher's marker and the store's
        lock is no longer held: the marker is stamped again before each retry, cleared
        when Salesforce answered without a token, and the save (compare-and-swap on
        the marker's version) is tried again for a few seconds when the store fails.
        """
        current = record.token
        if not record.is_minted and not current.refresh_token:
            reason = (
                "the access token expired and there is no refresh token "
                "(request the refresh_token scope)"
            )
            if record.grant == TOKEN_EXCHANGE:
                reason = (
                    "the access token from a token exchange expired and Salesforce "
                    "granted no refresh token: exchange a fresh token from your "
                    "identity provider (or grant the refresh_token scope)"
                )
            return (yield from self._needs_reauth(key, record, reason, None))
        notes: list[str] = []
        retried = False
        claim = [record]  # the latest version this refresher wrote (its marker)
        while True:
            try:
                flow = self._renew_flow(
                    record.grant,
                    record.username,
                    current,
                    notes,
                    NO_RETRY if retried else self.retry,
                )
                if claimed:
                    new = yield from self._marked_call(key, claim, flow, retried)
                else:
                    new = yield _Call(flow)
                new = yield from self._with_expiry(new)
                break
            except InvalidGrantError as exc:
                return (yield from self._refused(key, claim[0], exc, notes))
            except VersionConflictError:
                # Our marker was overwritten: the store has moved on without us.
                return (yield from self._after_conflict(key))
            except RefreshInProgressError as exc:
                # Reference 15.1: another refresh of this refresh token is being
                # processed. The grant is alive; never mark the connection for it.
                if retried:
                    if claimed:  # refused, so not in flight: nothing to wait for
                        yield from self._clear_marker(key, claim)
                    raise SalesforceUnavailableError(
                        f"Salesforce kept refusing to refresh {key!r} because another "
                        "refresh of the same refresh token was in progress elsewhere; "
                        "the connection is kept, try again shortly"
                    ) from exc
                latest = yield from self._await_sibling(key, claim[0])
                if latest is not None:
                    return latest
                retried = True  # nobody sharing the store renewed it: one more try
        saved: TokenRecord | None = None
        for pause in (*SAVE_RETRY_PAUSES, None) if claimed else (None,):
            try:
                saved = yield _Save(
                    key, new, record.grant, record.username, claim[0].version
                )
                break
            except VersionConflictError:
                return (yield from self._after_conflict(key))
            except StorageError:
                if pause is None:
                    break
                # Our marker keeps everyone else from presenting the old refresh
                # token meanwhile; the store is usually back within moments (a
                # terminated session reconnects, Redis restarts).
                logger.warning("renewed token of %r not saved yet; retrying", key)
                yield _Call(_pause(pause))
        if saved is None:
            # Salesforce may have rotated the refresh token: keep the new one in memory,
            # serve it, and write it on the next access (SECURITY.md item 26).
            with self._guard:
                self._pending[key] = _Pending(
                    claim[0].version, new, record.grant, record.username
                )
            self._remember(key, new)
            logger.error("renewed token of %r could not be saved; will retry", key)
            return new
        self._remember(key, saved.token)
        yield _Emit(TokenEvent("token_refreshed", key, saved.token, saved.grant))
        return saved.token

    def _marked_call(
        self, key: str, claim: list[TokenRecord], flow: Flow[T], restamp: bool
    ) -> Plan[T]:
        """Run ``flow`` one request at a time under this refresher's marker.

        Each request that follows a pause (a retry) is announced again first: the
        marker is stamped anew (compare-and-swap; ``claim[0]`` is kept current), so the
        window always runs from the latest request that presented the refresh token.
        When the last request is settled (Salesforce answered, or the request never
        left: no connection) and the flow still failed without a token (a final 5xx,
        a refused client, Salesforce unreachable), the marker is cleared: nothing is
        in flight any more.
        Raises what the flow raises; a lost marker raises
        :class:`VersionConflictError`, a failed stamp :class:`StorageError` (the retry
        is then not sent).
        """
        settled = False  # the last request was answered, or never sent

        def perform(step: HttpRequest | Wait) -> Plan[Any]:
            nonlocal restamp, settled
            if isinstance(step, Wait):
                restamp = True
                yield _Call(_pause(step.seconds))
                return None
            if restamp:
                claim[0] = yield _SetMarker(
                    key, claim[0].refresh_digest, claim[0].version
                )
                restamp = False
            try:
                value = yield _Call(_send(step))
            except TransportError as exc:
                settled = not exc.request_sent
                raise  # thrown on into the flow, which may retry
            settled = True
            return value

        try:
            return (yield from relay(flow, perform, throws=TransportError))
        except (InvalidGrantError, RefreshInProgressError, StorageError):
            raise  # the caller decides (the refresh token's fate, a lost marker)
        except SFOAuthError:
            if settled:
                yield from self._clear_marker(key, claim)
            raise

    def _clear_marker(self, key: str, claim: list[TokenRecord]) -> Plan[None]:
        try:
            claim[0] = yield _SetMarker(key, None, claim[0].version)
        except (StorageError, VersionConflictError):
            # Left in place it only delays the next refresh by the window.
            logger.warning("could not clear the refresh marker of %r", key)

    def _await_sibling(self, key: str, record: TokenRecord) -> Plan[Token | None]:
        """After a concurrent-refresh rejection: watch the store, not Salesforce.

        The other refresher may be a sibling sharing the store (one whose lock was
        lost): with rotation, presenting the same refresh token again once its refresh
        is done would revoke the grant, so wait for its write instead. Returns the
        sibling's token, or ``None`` when nothing changed within the pauses (an outside
        client holding the same token, or a sibling that died), after which the caller
        tries once more. The pauses stay within the refresh's time budget, so the
        store's lock lease still covers them.
        """
        started = time.monotonic()
        budget = self.worst_case_refresh_seconds() - self.oauth.app.timeout
        for pause in CONCURRENT_REFRESH_PAUSES:
            if time.monotonic() - started + pause > budget:
                break
            logger.info("refresh of %r is in progress elsewhere; waiting", key)
            yield _Call(_pause(pause))
            latest = yield _Read(key)
            if latest is not None and latest.version != record.version:
                fresh = self._usable(key, latest)
                self._remember(key, fresh.token)
                return fresh.token
        return None

    def _refused(
        self, key: str, record: TokenRecord, exc: InvalidGrantError, notes: list[str]
    ) -> Plan[Token]:
        latest = yield _Read(key)
        if latest is not None and latest.version != record.version:
            # A sibling won the race after all (SECURITY.md item 25: re-read first).
            record = self._usable(key, latest)
            self._remember(key, record.token)
            return record.token
        if record.is_minted:
            # A refused assertion or client-credentials grant is an app or org setting
            # (the hint says which); there is no user to send through login.
            raise exc
        reason = f"Salesforce refused the refresh token ({exc.error}"
        reason += f": {exc.description})" if exc.description else ")"
        if notes:
            reason += (
                f" after an earlier attempt got {notes[0]}; with refresh token "
                "rotation that lost answer carried the new refresh token, and "
                "presenting the old one again revoked the grant"
            )
        return (yield from self._needs_reauth(key, record, reason, exc))

    def _needs_reauth(
        self,
        key: str,
        record: TokenRecord,
        reason: str,
        cause: BaseException | None,
    ) -> Plan[Token]:
        try:
            marked = yield _Mark(key, reason, record.version)
        except VersionConflictError:
            return (yield from self._after_conflict(key))
        self._forget(key)
        yield _Emit(
            TokenEvent("needs_reauth", key, marked.token, marked.grant, reason=reason)
        )
        raise ReauthorizationRequired(
            f"connection {key!r} needs a new login: {reason}", reason=reason
        ) from cause

    def _bearer_plan(self, key: str, make: Callable[[Token], Flow[T]]) -> Plan[T]:
        """A bearer call (identity URL, userinfo) with the 401 rule of API requests:
        a refused token is renewed and the call retried (auth._renewing)."""

        def attempt(token: Token) -> Plan[tuple[bool, Any]]:
            try:
                value = yield _Call(make(token))
            except InvalidTokenError as exc:
                if not _refused_token(exc):
                    raise
                return True, exc
            return False, value

        refused, value = yield from _renewing(key, attempt)
        if refused:
            raise value
        return value  # type: ignore[no-any-return]

    def _identity_plan(self, key: str, version: str | None) -> Plan[Identity]:
        return self._bearer_plan(
            key, lambda token: identity.identity(self.oauth.app, token, version=version)
        )

    def _userinfo_plan(self, key: str) -> Plan[dict[str, Any]]:
        return self._bearer_plan(
            key, lambda token: userinfo.userinfo(self.oauth.app, token)
        )

    def _save_plan(
        self,
        key: str,
        token: Token,
        grant: str,
        username: str | None,
        revoke_superseded: bool,
    ) -> Plan[TokenRecord]:
        token = yield from self._with_expiry(token)
        previous = yield _Read(key)
        record: TokenRecord = yield _Save(key, token, grant, username, None)
        self._remember(key, record.token)
        yield _Emit(TokenEvent("token_obtained", key, record.token, record.grant))
        old = previous.token if previous is not None else None
        if (
            revoke_superseded
            and old is not None
            and old.refresh_token
            and old.refresh_token != token.refresh_token
        ):
            # SECURITY.md item 19: reconnecting revokes the superseded refresh token.
            try:
                # At the authorization server that issued it (its token_url's host).
                yield _Call(revoke.revoke_token(self.oauth.app, old))
            except SFOAuthError as exc:
                logger.warning(
                    "could not revoke the superseded grant of %r: %s",
                    key,
                    type(exc).__name__,
                )
        return record

    def _mint_plan(self, key: str, grant: str, username: str | None) -> Plan[Token]:
        if grant not in MINTED_GRANTS:
            raise ValueError(f"grant must be one of {sorted(MINTED_GRANTS)}")
        token = yield _Call(self._renew_flow(grant, username, None, []))
        token = yield from self._with_expiry(token)
        record: TokenRecord = yield _Save(key, token, grant, username, None)
        self._remember(key, record.token)
        yield _Emit(TokenEvent("token_obtained", key, record.token, record.grant))
        return record.token

    def _exchange_plan(
        self,
        key: str,
        subject_token: str,
        subject_token_type: str,
        token_handler: str | None,
        scopes: tuple[str, ...] | list[str] | None,
    ) -> Plan[Token]:
        # Reference 15.8: sent once (the flow never retries); the result is stored like
        # a login and refreshed when Salesforce granted a refresh token.
        token = yield _Call(
            token_exchange.token_exchange(
                self.oauth.app,
                subject_token,
                subject_token_type,
                token_handler=token_handler,
                scopes=scopes,
            )
        )
        record: TokenRecord = yield from self._save_plan(
            key, token, TOKEN_EXCHANGE, None, True
        )
        return record.token

    def _obtain_plan(self, key: str, grant: str, username: str | None) -> Plan[Token]:
        # Under the store's lock: a sibling may have minted while this caller waited.
        record: TokenRecord | None = yield _Read(key)
        if record is not None and not record.needs_reauth:
            self._remember(key, record.token)
            return record.token
        return (yield from self._mint_plan(key, grant, username))

    def _revoke_plan(self, key: str) -> Plan[bool]:
        record = yield _Read(key)
        self._forget(key)
        with self._guard:
            self._pending.pop(key, None)
        if record is None:
            return False
        revoked = False
        try:
            # The refresh token (or the access token), at the authorization server that
            # issued the grant (a sandbox's test.salesforce.com, a My Domain, a site).
            yield _Call(revoke.revoke_token(self.oauth.app, record.token))
            revoked = True
        except InvalidTokenError:
            revoked = True  # already dead at Salesforce: the goal is reached
        except SFOAuthError as exc:
            # SECURITY.md item 19: local tokens go even when Salesforce cannot be told.
            logger.warning(
                "revoke of %r at Salesforce failed: %s", key, type(exc).__name__
            )
        yield _Delete(key)
        self._forget(key)
        yield _Emit(
            TokenEvent(
                "token_revoked",
                key,
                record.token,
                record.grant,
                reason="" if revoked else "Salesforce did not confirm the revocation",
            )
        )
        return revoked
