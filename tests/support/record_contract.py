"""The lifecycle fields every token store keeps (CONTRACTS.md, "Record fields for the
lifecycle"): ``refreshed_at``, the "refresh in flight" marker and ``idle_keys``.

Shared by the memory, Redis, Django and SQLAlchemy store tests; each passes a store (sync
or async) and a ``make_token(n)`` that yields distinct tokens its store accepts.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from sfoauth_core.storage import VersionConflictError
from sfoauth_core.storage.base import refresh_digest
from sfoauth_core.tokens import Token

MakeToken = Callable[..., Token]


async def call(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def check_refreshed_at_and_marker(store: Any, make_token: MakeToken) -> None:
    """Saves stamp ``refreshed_at``; the marker is a compare-and-swap write that keeps
    the token and is cleared by the next save or status change."""
    before = time.time()
    first = make_token(1)
    saved = await call(store.save("rec", first))
    assert saved.refreshed_at is not None and saved.refreshed_at >= before - 1
    assert (saved.refresh_started_at, saved.refresh_digest) == (None, None)
    loaded = await call(store.get("rec"))
    assert loaded.refreshed_at == pytest.approx(saved.refreshed_at, abs=1e-3)
    assert loaded.refresh_started_at is None and loaded.refresh_digest is None

    digest = refresh_digest(first.refresh_token)
    assert digest and first.refresh_token not in digest
    marked = await call(
        store.set_refresh_marker("rec", digest, expected_version=saved.version)
    )
    assert marked.version == saved.version + 1
    assert marked.refresh_digest == digest and marked.refresh_started_at is not None
    loaded = await call(store.get("rec"))
    assert loaded.version == marked.version
    assert loaded.token == first and loaded.status == "active"
    assert loaded.refresh_digest == digest
    assert loaded.refresh_started_at == pytest.approx(
        marked.refresh_started_at, abs=1e-3
    )
    assert loaded.refresh_in_flight(digest, loaded.refresh_started_at + 1, 30)
    assert not loaded.refresh_in_flight(digest, loaded.refresh_started_at + 31, 30)
    assert not loaded.refresh_in_flight("other", loaded.refresh_started_at, 30)
    # The marker is not a refresh: the refresh token was not used yet.
    assert loaded.refreshed_at == pytest.approx(saved.refreshed_at, abs=1e-3)

    # Compare-and-swap: a writer holding an older version is refused.
    with pytest.raises(VersionConflictError):
        await call(
            store.set_refresh_marker("rec", digest, expected_version=saved.version)
        )
    with pytest.raises(VersionConflictError):
        await call(store.set_refresh_marker("missing", digest, expected_version=1))
    with pytest.raises(VersionConflictError):
        await call(store.save("rec", make_token(9), expected_version=saved.version))

    # The refresh's save (compare-and-swap on the marker's version) clears it.
    second = make_token(2)
    refreshed = await call(store.save("rec", second, expected_version=marked.version))
    assert (refreshed.refresh_started_at, refreshed.refresh_digest) == (None, None)
    assert refreshed.refreshed_at >= saved.refreshed_at
    loaded = await call(store.get("rec"))
    assert (loaded.refresh_started_at, loaded.refresh_digest) == (None, None)

    # A marker cleared explicitly (the refresh was answered, without a new token).
    marked = await call(
        store.set_refresh_marker(
            "rec", refresh_digest(second.refresh_token), expected_version=loaded.version
        )
    )
    cleared = await call(
        store.set_refresh_marker("rec", None, expected_version=marked.version)
    )
    assert (cleared.refresh_started_at, cleared.refresh_digest) == (None, None)
    assert (await call(store.get("rec"))).refresh_digest is None

    # A status change clears the marker and keeps when the token was last used.
    marked = await call(
        store.set_refresh_marker(
            "rec",
            refresh_digest(second.refresh_token),
            expected_version=cleared.version,
        )
    )
    flagged = await call(
        store.mark_needs_reauth("rec", "invalid_grant", expected_version=marked.version)
    )
    assert flagged.needs_reauth
    loaded = await call(store.get("rec"))
    assert loaded.needs_reauth and loaded.refresh_digest is None
    assert loaded.refresh_started_at is None
    assert loaded.refreshed_at == pytest.approx(refreshed.refreshed_at, abs=1e-3)


async def check_idle_keys(store: Any, make_token: MakeToken) -> None:
    """Active records with a refresh token, not minted, idle since before the cut;
    oldest first, at most ``limit``."""
    start = time.time()
    assert await call(store.idle_keys(idle_since=start + 60)) == []
    await call(store.save("idle-b", make_token(1)))
    time.sleep(0.01)  # distinct stamps, so "oldest first" is observable
    await call(store.save("idle-a", make_token(2)))
    time.sleep(0.01)
    await call(store.save("idle-c", make_token(3)))
    await call(store.save("minted", make_token(4), grant="jwt_bearer"))
    await call(store.save("no-refresh", make_token(5, refresh_token=None)))
    flagged = await call(store.save("flagged", make_token(6)))
    await call(
        store.mark_needs_reauth("flagged", "x", expected_version=flagged.version)
    )
    later = time.time() + 60
    assert await call(store.idle_keys(idle_since=later)) == [
        "idle-b",
        "idle-a",
        "idle-c",
    ]
    assert await call(store.idle_keys(idle_since=later, limit=2)) == [
        "idle-b",
        "idle-a",
    ]
    assert await call(store.idle_keys(idle_since=later, limit=0)) == []
    assert await call(store.idle_keys(idle_since=start - 60)) == []
    with pytest.raises(ValueError):
        await call(store.idle_keys(idle_since=later, limit=-1))

    # A refresh makes a connection the newest; a marker alone does not.
    time.sleep(0.01)
    record = await call(store.get("idle-b"))
    marked = await call(
        store.set_refresh_marker(
            "idle-a",
            refresh_digest("x"),
            expected_version=(await call(store.get("idle-a"))).version,
        )
    )
    assert marked.refresh_digest is not None
    await call(store.save("idle-b", make_token(7), expected_version=record.version))
    assert await call(store.idle_keys(idle_since=later)) == [
        "idle-a",
        "idle-c",
        "idle-b",
    ]
    cut = (await call(store.get("idle-b"))).refreshed_at
    assert await call(store.idle_keys(idle_since=cut)) == ["idle-a", "idle-c"]


def run_sync(check: Any, *args: Any) -> None:
    """Run a check against a sync store without an event loop (Django's ORM refuses
    to run inside one): with a sync store nothing in it ever suspends."""
    coro = check(*args)
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("a sync store's check suspended")


def age_marker(store: Any, key: str, seconds: float) -> None:
    """Move an in-memory store's "refresh in flight" marker ``seconds`` into the past
    (as if the refresh had started that much earlier)."""
    with store._guard:
        record = store._records[key]
        assert record.refresh_started_at is not None, "no marker to age"
        store._records[key] = replace(
            record, refresh_started_at=record.refresh_started_at - seconds
        )
