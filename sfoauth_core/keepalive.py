"""The keep-alive: refresh connections whose refresh token has been idle too long.

Salesforce apps can expire a refresh token that goes unused for a configured period (the
"Refresh Token Policy" idle limit, a sliding window that each use restarts; reference
§15.3, ARCHITECTURE.md lifecycle rule 8). A connection used every day never gets there;
one used once a quarter dies silently and its user must log in again. The keep-alive
lists the connections whose refresh token was last used before a threshold (the store's
``idle_keys``, oldest first) and refreshes each one.

Safe to run from cron or a task queue on several hosts at once: each refresh goes
through the manager's normal single-flight renewal (in-process lock, then the store's
lock, then a re-read), presenting the access token read when the connection was picked.
A connection another host renewed moments ago holds a different access token by the
time the lock is taken: it is no longer idle and is skipped without a call. So two
hosts make at most one refresh per connection, and with refresh-token rotation nothing
is replayed. Each host works through its batch in a random order, so hosts running at
once share the work instead of queueing behind each other's locks.

One bad connection never stops the run: every connection gets an outcome
(:class:`KeepAliveResult`) and the run a :class:`KeepAliveSummary`.

The helpers at the end (:func:`idle_seconds`, :func:`idle_risk`, :func:`parse_duration`,
:func:`format_duration`) are what status reports (``manage.py sfoauth_status``, ``sfoauth
status``) and commands share.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio

from .exceptions import (
    ConfigurationError,
    ReauthorizationRequired,
    SFOAuthError,
    TokenNotFoundError,
)
from .storage.base import TokenRecord

if TYPE_CHECKING:
    from .manager import AsyncTokenManager, TokenManager

__all__ = [
    "AT_RISK_SHARE",
    "DEFAULT_KEEPALIVE_CONCURRENCY",
    "OUTCOME_LABELS",
    "IdleRisk",
    "KeepAliveOutcome",
    "KeepAliveProgress",
    "KeepAliveResult",
    "KeepAliveSummary",
    "default_idle_for",
    "format_duration",
    "idle_risk",
    "idle_seconds",
    "keep_alive_each",
    "keep_alive_one",
    "last_used",
    "parse_duration",
]

logger = logging.getLogger("sfoauth.keepalive")

KeepAliveOutcome = Literal["kept_alive", "needs_reauth", "failed", "skipped"]

#: Refreshes in flight at once per run (each holds one connection's lock).
DEFAULT_KEEPALIVE_CONCURRENCY = 4

#: What each outcome means to a person reading a report.
OUTCOME_LABELS: dict[KeepAliveOutcome, str] = {
    "kept_alive": "kept alive",
    "needs_reauth": "needs a new login",
    "failed": "failed",
    "skipped": "skipped",
}


@dataclass(frozen=True, slots=True)
class KeepAliveResult:
    """What the keep-alive did to one connection.

    Attributes:
        key: the connection's store key.
        outcome: ``kept_alive`` (refreshed at Salesforce), ``needs_reauth`` (Salesforce
            refused the grant, e.g. it was already idle past the limit: the connection
            is flagged and its user must log in again), ``failed`` (Salesforce or the
            store was unavailable; nothing changed, the next run tries again) or
            ``skipped`` (no longer idle, renewed elsewhere, disconnected, or nothing to
            refresh).
        detail: why, in words (never a token value).
    """

    key: str
    outcome: KeepAliveOutcome
    detail: str = ""


#: ``progress(result, done, total)`` is called once per connection as it finishes
#: (serialised: never from two threads at once).
KeepAliveProgress = Callable[[KeepAliveResult, int, int], Any]


@dataclass(frozen=True, slots=True)
class KeepAliveSummary:
    """The outcome of one keep-alive run.

    Attributes:
        idle_since: the threshold: connections whose refresh token was last used before
            this epoch time were picked.
        results: one per picked connection, in the order they finished.
        seconds: wall time of the run.
    """

    idle_since: float
    results: tuple[KeepAliveResult, ...]
    seconds: float

    def count(self, outcome: KeepAliveOutcome) -> int:
        """How many connections ended with ``outcome``."""
        return sum(1 for result in self.results if result.outcome == outcome)

    def keys(self, outcome: KeepAliveOutcome) -> list[str]:
        """The keys of the connections that ended with ``outcome``."""
        return [r.key for r in self.results if r.outcome == outcome]

    @property
    def kept_alive(self) -> int:
        return self.count("kept_alive")

    @property
    def needs_reauth(self) -> int:
        return self.count("needs_reauth")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def ok(self) -> bool:
        """No connection failed (flagged ones are an outcome, not a failure of the
        run: only a new login can help them)."""
        return self.failed == 0

    @property
    def rate(self) -> float:
        """Connections kept alive per second of the run."""
        return self.kept_alive / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        counts = Counter(r.outcome for r in self.results)
        parts = ", ".join(
            f"{OUTCOME_LABELS[outcome]} {counts.get(outcome, 0)}"
            for outcome in OUTCOME_LABELS
        )
        return f"{len(self.results)} idle connection(s): {parts} ({self.seconds:.1f} s)"


def _check(idle_for: float, limit: int | None, concurrency: int) -> None:
    if not idle_for > 0:
        raise ConfigurationError("idle_for", "must be a positive number of seconds")
    if limit is not None and limit < 1:
        raise ConfigurationError("limit", "must be at least 1 (or None: no limit)")
    if concurrency < 1:
        raise ConfigurationError("concurrency", "must be at least 1")


def _idle_keys_of(store: object) -> Callable[..., Any]:
    idle_keys = getattr(store, "idle_keys", None)
    if not callable(idle_keys):
        raise ConfigurationError(
            "store",
            f"{type(store).__name__} cannot list idle connections (it has no "
            "idle_keys method); the keep-alive needs one",
        )
    return idle_keys  # type: ignore[no-any-return]


def last_used(record: TokenRecord) -> float:
    """Epoch seconds when the record's refresh token was last issued or used
    (``refreshed_at``; ``updated_at`` for records written before it existed)."""
    return record.idle_since


def _skip_reason(record: TokenRecord | None, idle_since: float) -> str | None:
    """Why a picked connection needs no refresh (read again just before), or
    ``None``."""
    if record is None:
        return "disconnected meanwhile"
    if record.needs_reauth:
        return "already needs a new login"
    if record.is_minted:
        return f"{record.grant} tokens are minted again, not refreshed"
    if not record.token.refresh_token:
        return "no refresh token"
    if last_used(record) >= idle_since:
        return "used meanwhile"
    return None


def _failure(key: str, exc: Exception) -> KeepAliveResult:
    """``failed`` (the next run retries), or the outcome an error stands for."""
    if isinstance(exc, ReauthorizationRequired):
        return KeepAliveResult(key, "needs_reauth", exc.reason or str(exc))
    if isinstance(exc, TokenNotFoundError):
        return KeepAliveResult(key, "skipped", "disconnected meanwhile")
    if isinstance(exc, SFOAuthError):
        # Messages of the tree never carry a token or secret (exceptions.py).
        logger.warning("keep-alive of %r failed: %s", key, type(exc).__name__)
        return KeepAliveResult(key, "failed", f"{type(exc).__name__}: {exc}")
    # An unexpected error is a bug somewhere; log it whole, but go on with the others.
    logger.exception("keep-alive of %r failed unexpectedly", key)
    return KeepAliveResult(key, "failed", type(exc).__name__)


def _renewed(key: str, at_salesforce: bool) -> KeepAliveResult:
    if at_salesforce:
        return KeepAliveResult(key, "kept_alive")
    return KeepAliveResult(key, "skipped", "renewed elsewhere moments ago")


class _Tally:
    """Collects results and reports progress, one at a time."""

    def __init__(self, total: int, progress: KeepAliveProgress | None) -> None:
        self.total = total
        self.results: list[KeepAliveResult] = []
        self._progress = progress
        self._lock = threading.Lock()

    def add(self, result: KeepAliveResult) -> None:
        with self._lock:
            self.results.append(result)
            if self._progress is not None:
                try:
                    self._progress(result, len(self.results), self.total)
                except Exception:  # a broken progress printer must not stop the run
                    logger.exception("keep-alive progress callback failed")


def _batch(keys: Iterable[str]) -> list[str]:
    batch = list(dict.fromkeys(keys))
    random.shuffle(batch)  # several hosts: share the work instead of queueing
    return batch


# Sync ----------------------------------------------------------------------------------
def keep_alive_one(
    manager: TokenManager, key: str, *, idle_since: float
) -> KeepAliveResult:
    """Keep one connection alive if its refresh token was last used before
    ``idle_since``; never raises for the connection (its outcome says what happened).

    The building block of :meth:`TokenManager.keep_alive`, for stores whose
    connections belong to different apps (the ``sfoauth`` command's token file): see
    :func:`keep_alive_each`.
    """
    try:
        record = manager.store.get(key)
        skip = _skip_reason(record, idle_since)
        if skip is not None:
            return KeepAliveResult(key, "skipped", skip)
        record = cast("TokenRecord", record)  # no skip reason: there is a record
        # The normal renewal: under the locks it re-reads, and makes no call when the
        # stored access token is no longer the one read here (renewed by a sibling).
        renewal = manager.renew(key, stale=record.token.access_token)
    except Exception as exc:  # noqa: BLE001 - one connection never stops the run
        return _failure(key, exc)
    return _renewed(key, renewal.at_salesforce)


def _release_thread(store: object) -> None:
    release = getattr(store, "release_thread", None)
    if callable(release):
        release()


def keep_alive_sync(
    manager: TokenManager,
    *,
    idle_for: float,
    limit: int | None,
    concurrency: int,
    progress: KeepAliveProgress | None,
) -> KeepAliveSummary:
    """:meth:`TokenManager.keep_alive` (see there)."""
    _check(idle_for, limit, concurrency)
    idle_keys = _idle_keys_of(manager.store)
    started = time.monotonic()
    idle_since = manager._clock() - idle_for
    keys: Sequence[str] = _batch(idle_keys(idle_since=idle_since, limit=limit))
    tally = _Tally(len(keys), progress)
    if concurrency == 1 or len(keys) <= 1:
        for key in keys:
            tally.add(keep_alive_one(manager, key, idle_since=idle_since))
    else:
        pending = iter(keys)
        guard = threading.Lock()

        def work() -> None:
            try:
                while True:
                    with guard:
                        key = next(pending, None)
                    if key is None:
                        return
                    tally.add(keep_alive_one(manager, key, idle_since=idle_since))
            finally:
                # e.g. the Django store closes this thread's database connections.
                _release_thread(manager.store)

        workers = min(concurrency, len(keys))
        with ThreadPoolExecutor(workers, thread_name_prefix="sfoauth-keepalive") as ex:
            for future in [ex.submit(work) for _ in range(workers)]:
                future.result()
    return KeepAliveSummary(
        idle_since, tuple(tally.results), time.monotonic() - started
    )


def keep_alive_each(
    keys: Iterable[str],
    manager_for: Callable[[str], TokenManager],
    *,
    idle_for: float,
    now: float | None = None,
    progress: KeepAliveProgress | None = None,
) -> KeepAliveSummary:
    """Keep alive the idle ones of ``keys``, each through its own manager, one after
    another: for a store whose connections were obtained through different apps.

    Args:
        keys: candidate connections (e.g. the store's ``idle_keys``).
        manager_for: the manager (with the right app) of a key.
        idle_for: as :meth:`TokenManager.keep_alive`.
        now: epoch seconds (default: the current time).
        progress: as :meth:`TokenManager.keep_alive`.
    """
    _check(idle_for, None, 1)
    started = time.monotonic()
    idle_since = (time.time() if now is None else now) - idle_for
    batch = list(dict.fromkeys(keys))
    tally = _Tally(len(batch), progress)
    for key in batch:
        try:
            manager = manager_for(key)
        except Exception as exc:  # noqa: BLE001 - e.g. an app that cannot be built
            tally.add(_failure(key, exc))
            continue
        tally.add(keep_alive_one(manager, key, idle_since=idle_since))
    return KeepAliveSummary(
        idle_since, tuple(tally.results), time.monotonic() - started
    )


# Async ---------------------------------------------------------------------------------
async def _one_async(
    manager: AsyncTokenManager, key: str, idle_since: float
) -> KeepAliveResult:
    try:
        record = await manager.store.get(key)
        skip = _skip_reason(record, idle_since)
        if skip is not None:
            return KeepAliveResult(key, "skipped", skip)
        record = cast("TokenRecord", record)  # no skip reason: there is a record
        renewal = await manager.renew(key, stale=record.token.access_token)
    except Exception as exc:  # noqa: BLE001 - one connection never stops the run
        return _failure(key, exc)
    return _renewed(key, renewal.at_salesforce)


async def keep_alive_async(
    manager: AsyncTokenManager,
    *,
    idle_for: float,
    limit: int | None,
    concurrency: int,
    progress: KeepAliveProgress | None,
) -> KeepAliveSummary:
    """:meth:`AsyncTokenManager.keep_alive` (see there)."""
    _check(idle_for, limit, concurrency)
    idle_keys = _idle_keys_of(manager.store)
    started = time.monotonic()
    idle_since = manager._clock() - idle_for
    keys = _batch(await idle_keys(idle_since=idle_since, limit=limit))
    tally = _Tally(len(keys), progress)
    pending = iter(keys)

    async def work() -> None:
        for key in pending:  # one shared iterator: each key goes to one worker
            tally.add(await _one_async(manager, key, idle_since))

    async with anyio.create_task_group() as group:
        for _ in range(min(concurrency, len(keys))):
            group.start_soon(work)
    return KeepAliveSummary(
        idle_since, tuple(tally.results), time.monotonic() - started
    )


# Reporting -----------------------------------------------------------------------------
IdleRisk = Literal["ok", "at_risk", "expired"]

#: Idle for this share of the idle limit or more: at risk (the keep-alive is late).
AT_RISK_SHARE = 0.5


def idle_seconds(record: TokenRecord, now: float | None = None) -> float | None:
    """How long the record's refresh token has been unused, or ``None`` when an idle
    limit cannot apply (minted grants, no refresh token, already flagged)."""
    if record.is_minted or record.needs_reauth or not record.token.refresh_token:
        return None
    stamp = last_used(record)
    if stamp <= 0:
        return None
    return max(0.0, (time.time() if now is None else now) - stamp)


def idle_risk(idle: float | None, idle_limit: float | None) -> IdleRisk | None:
    """How close a connection idle for ``idle`` seconds is to the app's idle limit.

    Returns:
        ``None`` when either is unknown; ``"expired"`` at or past the limit (Salesforce
        has most likely expired the refresh token: the next refresh fails and the user
        must log in again); ``"at_risk"`` from :data:`AT_RISK_SHARE` of the limit on
        (the keep-alive should have refreshed it); ``"ok"`` below.
    """
    if idle is None or idle_limit is None:
        return None
    if idle >= idle_limit:
        return "expired"
    if idle >= idle_limit * AT_RISK_SHARE:
        return "at_risk"
    return "ok"


def default_idle_for(idle_limit: float) -> float:
    """The keep-alive threshold for an idle limit: a third of it, so a keep-alive that
    stops running for a while still leaves two thirds of the window."""
    return idle_limit / 3


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"45m"``, ``"12h"``, ``"10d"`` or ``"2w"``.

    Raises:
        ValueError: anything else, or zero.
    """
    match = _DURATION.match(text)
    seconds = (
        float(match.group(1)) * _UNITS[match.group(2).lower() or "s"] if match else 0
    )
    if not seconds:
        raise ValueError(
            f"expected a duration such as 90s, 45m, 12h, 10d or 2w, got {text!r}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``"3d 4h"``, ``"5h 12m"``, ``"7m"``, ``"40s"``: the two largest units."""
    total = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
