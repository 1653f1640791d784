"""The keep-alive (reference 15.3): refresh connections idle past a threshold.

Against the emulator with rotation + reuse detection and an idle limit
(``inactivity`` refresh-token policy, on the emulator's clock). What is proven:

* idle connections are refreshed and survive the idle limit; one left alone dies;
* minted grants, flagged connections and recently used ones are not touched;
* one dead grant (``needs_reauth``) or one failing refresh never stops the run, and is
  reported, with the record untouched for a failure;
* two hosts running it at once make one refresh per connection, no reuse detected;
* bounded: ``limit`` picks the longest idle first; progress is reported per connection.

The manager's clock picks what counts as idle: ``idle_since = clock() - idle_for``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import anyio
import pytest
from support.manager import connect, issue, make_async_manager, make_manager

from sfoauth_core.exceptions import ConfigurationError, ReauthorizationRequired
from sfoauth_core.keepalive import (
    KeepAliveResult,
    KeepAliveSummary,
    default_idle_for,
    format_duration,
    idle_risk,
    idle_seconds,
    keep_alive_each,
    last_used,
    parse_duration,
)
from sfoauth_core.manager import TokenManager
from sfoauth_core.storage import InMemoryTokenStore
from sfoauth_core.testing import Fault, SalesforceEmulator

LIMIT = 100.0  # the app's idle limit, emulator seconds


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    emulator.apps["web"].refresh_token_policy = f"inactivity:{LIMIT:g}"
    return emulator


class Clock:
    """The keep-alive's clock: frozen at a chosen instant."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def keep_alive(manager: TokenManager, **kwargs: Any) -> KeepAliveSummary:
    kwargs.setdefault("idle_for", 1e-9)
    return manager.keep_alive(**kwargs)


def outcomes(summary: KeepAliveSummary) -> dict[str, str]:
    return {r.key: r.outcome for r in summary.results}


def test_idle_connections_are_kept_alive_past_the_idle_limit(emu):
    clock = Clock()
    manager, events = make_manager(emu, clock=clock)
    alone, _ = make_manager(emu)
    first = {key: connect(manager, emu, key) for key in ("u1", "u2")}
    connect(alone, emu, "u3")
    clock.now = time.time()
    emu.advance_time(LIMIT * 0.6)
    calls = emu.calls("refresh_token")

    summary = keep_alive(manager)

    assert outcomes(summary) == {"u1": "kept_alive", "u2": "kept_alive"}
    assert summary.kept_alive == 2 and summary.ok and summary.failed == 0
    assert emu.calls("refresh_token") == calls + 2
    assert events.names().count("token_refreshed") == 2
    for key, token in first.items():
        record = manager.record(key)
        assert record is not None and record.token.refresh_token != token.refresh_token
    emu.advance_time(LIMIT * 0.6)  # 1.2 limits after the login, 0.6 after the refresh
    for key in first:
        manager.refresh(key)  # alive
    with pytest.raises(ReauthorizationRequired, match="expired access/refresh token"):
        alone.refresh("u3")  # left idle past the limit: dead
    assert emu.reuse_detected == 0
    assert "kept alive 2" in str(summary) and "2 idle connection(s)" in str(summary)


def test_recently_used_minted_and_flagged_connections_are_left_alone(emu):
    clock = Clock()
    manager, _ = make_manager(emu, clock=clock)
    connect(manager, emu, "idle")
    connect(manager, emu, "flagged")
    manager.store.mark_needs_reauth("flagged", "test")
    minting, _ = make_manager(emu, manager.store, app="cc")
    minting.mint("cc", grant="client_credentials")
    no_refresh = replace(issue(emu), refresh_token=None)
    manager.save("no-refresh", no_refresh, revoke_superseded=False)
    clock.now = time.time()
    connect(manager, emu, "busy")  # used after the threshold

    summary = manager.keep_alive(idle_for=1e-9)

    assert outcomes(summary) == {"idle": "kept_alive"}


def test_a_grant_already_idle_past_the_limit_is_flagged_and_the_run_goes_on(emu):
    clock = Clock()
    manager, events = make_manager(emu, clock=clock)
    connect(manager, emu, "late")
    emu.advance_time(LIMIT * 0.6)
    connect(manager, emu, "u2")
    connect(manager, emu, "u3")
    clock.now = time.time()
    emu.advance_time(LIMIT * 0.6)  # "late" is past the limit, the others are not

    summary = keep_alive(manager, concurrency=1)

    assert outcomes(summary) == {
        "late": "needs_reauth",
        "u2": "kept_alive",
        "u3": "kept_alive",
    }
    assert summary.ok  # only a new login helps a dead grant: not a failed run
    detail = next(r.detail for r in summary.results if r.key == "late")
    assert "expired access/refresh token" in detail
    flagged = manager.record("late")
    assert flagged is not None and flagged.needs_reauth
    assert "needs_reauth" in events.names()


def test_failed_refresh_leaves_the_record_untouched(emu):
    clock = Clock()
    manager, _ = make_manager(emu, clock=clock)
    connect(manager, emu, "u1")
    clock.now = time.time()
    before = manager.record("u1")
    emu.inject_fault(
        Fault(kind="status", status=503, count=3, grant_type="refresh_token")
    )

    summary = keep_alive(manager)

    assert outcomes(summary) == {"u1": "failed"} and not summary.ok
    after = manager.record("u1")  # only the refresh's marker came and went (answered)
    assert (after.token, after.status, after.refreshed_at) == (
        before.token,
        before.status,
        before.refreshed_at,
    )
    assert after.refresh_digest is None


def test_two_hosts_at_once_refresh_each_connection_once(emu):
    store = InMemoryTokenStore()
    seeding, _ = make_manager(emu, store)
    keys = [f"u{i}" for i in range(12)]
    for key in keys:
        connect(seeding, emu, key)
    hosts = [make_manager(emu, store, clock=Clock())[0] for _ in range(2)]
    calls = emu.calls("refresh_token")
    summaries: list[KeepAliveSummary] = []
    barrier = threading.Barrier(2)

    def run(host: TokenManager) -> None:
        barrier.wait()
        summaries.append(keep_alive(host, concurrency=3))

    threads = [threading.Thread(target=run, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert emu.calls("refresh_token") - calls == len(keys)
    assert emu.reuse_detected == 0
    assert sum(s.kept_alive for s in summaries) == len(keys)
    assert all(s.failed == 0 and s.needs_reauth == 0 for s in summaries)
    for s in summaries:
        for result in s.results:
            if result.outcome == "skipped":
                assert result.detail in (
                    "renewed elsewhere moments ago",
                    "used meanwhile",
                )
    for key in keys:
        seeding.refresh(key)  # every rotated refresh token was stored


def test_limit_takes_the_longest_idle_first_and_progress_is_reported(emu):
    clock = Clock()
    manager, _ = make_manager(emu, clock=clock)
    for key in ("oldest", "older", "newer"):
        connect(manager, emu, key)
    clock.now = time.time()
    seen: list[tuple[KeepAliveResult, int, int]] = []

    summary = keep_alive(
        manager, limit=2, progress=lambda r, done, total: seen.append((r, done, total))
    )

    assert outcomes(summary) == {"oldest": "kept_alive", "older": "kept_alive"}
    assert [(done, total) for _, done, total in seen] == [(1, 2), (2, 2)]
    assert {r.key for r, _, _ in seen} == {"oldest", "older"}


def test_a_broken_progress_callback_does_not_stop_the_run(emu, caplog):
    clock = Clock()
    manager, _ = make_manager(emu, clock=clock)
    connect(manager, emu, "u1")
    clock.now = time.time()

    def broken(result: KeepAliveResult, done: int, total: int) -> None:
        raise RuntimeError("printer on fire")

    summary = keep_alive(manager, progress=broken)
    assert summary.kept_alive == 1


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"idle_for": 0}, "idle_for"),
        ({"idle_for": -5}, "idle_for"),
        ({"idle_for": 60, "limit": 0}, "limit"),
        ({"idle_for": 60, "concurrency": 0}, "concurrency"),
    ],
)
def test_bad_arguments(emu, kwargs, setting):
    manager, _ = make_manager(emu)
    with pytest.raises(ConfigurationError) as caught:
        manager.keep_alive(**kwargs)
    assert caught.value.setting == setting


def test_a_store_that_cannot_list_idle_connections_is_a_clear_error(emu):
    class Minimal:
        def __init__(self) -> None:
            self.inner = InMemoryTokenStore()

        def __getattr__(self, name: str) -> Any:
            if name == "idle_keys":
                raise AttributeError(name)
            return getattr(self.inner, name)

    manager, _ = make_manager(emu, Minimal())
    with pytest.raises(ConfigurationError, match="idle_keys"):
        manager.keep_alive(idle_for=60)


@pytest.mark.anyio
async def test_async_keep_alive(emu):
    clock = Clock()
    manager, _events = make_async_manager(emu, clock=clock)
    for key in ("u1", "u2", "u3"):
        await manager.save(key, issue(emu), revoke_superseded=False)
    clock.now = time.time()
    emu.advance_time(LIMIT * 0.6)
    seen: list[int] = []

    summary = await manager.keep_alive(
        idle_for=1e-9, concurrency=2, progress=lambda r, done, total: seen.append(done)
    )

    assert outcomes(summary) == dict.fromkeys(("u1", "u2", "u3"), "kept_alive")
    assert sorted(seen) == [1, 2, 3]
    emu.advance_time(LIMIT * 0.6)
    async with anyio.create_task_group() as group:
        for key in ("u1", "u2", "u3"):
            group.start_soon(manager.refresh, key)
    assert emu.reuse_detected == 0


# Reporting helpers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("45m", 2700), ("12h", 43200), ("10d", 864000)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(text.upper()) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "5y", "ten days", "1e3"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (40, "40s"),
        (419, "6m 59s"),
        (3660, "1h 1m"),
        (86400 * 40 + 7300, "40d 2h"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("idle", "limit", "risk"),
    [
        (None, 100.0, None),
        (10.0, None, None),
        (10.0, 100.0, "ok"),
        (50.0, 100.0, "at_risk"),
        (100.0, 100.0, "expired"),
    ],
)
def test_idle_risk(idle, limit, risk):
    assert idle_risk(idle, limit) == risk


def test_idle_seconds_only_for_refreshable_connections(emu):
    manager, _ = make_manager(emu)
    connect(manager, emu, "user")
    record = manager.record("user")
    assert record is not None
    assert idle_seconds(record, now=last_used(record) + 30) == 30
    flagged = manager.store.mark_needs_reauth("user", "test")
    assert idle_seconds(flagged) is None
    minting, _ = make_manager(emu, manager.store, app="cc")
    minting.mint("cc", grant="client_credentials")
    minted = manager.record("cc")
    assert minted is not None and idle_seconds(minted) is None
    assert default_idle_for(30 * 86400) == 10 * 86400


def test_keep_alive_each_uses_each_connections_own_app(emu):
    # A store whose connections come from different apps (the sfoauth command's token
    # file): each is refreshed through a manager with its own app.
    store = InMemoryTokenStore()
    web, _ = make_manager(emu, store)
    device, _ = make_manager(emu, store, app="device")
    web.save("web-user", issue(emu), revoke_superseded=False)
    device.save("device-user", issue(emu, "device"), revoke_superseded=False)
    managers = {"web-user": web, "device-user": device}
    seen: list[str] = []

    summary = keep_alive_each(
        [*store.idle_keys(idle_since=time.time() + 1), "gone"],
        lambda key: managers[key],
        idle_for=1e-9,
        now=time.time() + 1,
        progress=lambda result, done, total: seen.append(f"{done}/{total}"),
    )

    assert outcomes(summary) == {
        "web-user": "kept_alive",
        "device-user": "kept_alive",
        "gone": "failed",  # no manager for it: reported, the others still done
    }
    assert seen == ["1/3", "2/3", "3/3"]
    assert emu.calls("refresh_token") == 2
