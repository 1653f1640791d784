"""The token event registry: decorators, connect/disconnect, failing and async hooks."""

from __future__ import annotations

import logging

import pytest

from sfoauth_core.events import TokenEvent, TokenEvents
from sfoauth_core.tokens import Token


def test_decorators_register_per_event_and_disconnect():
    events = TokenEvents()
    seen: list[tuple[str, str]] = []

    @events.on_token_obtained
    def obtained(event: TokenEvent) -> None:
        seen.append(("obtained", event.key))

    events.on_token_refreshed(lambda e: seen.append(("refreshed", e.key)))
    events.on_token_revoked(lambda e: seen.append(("revoked", e.key)))
    events.on_needs_reauth(lambda e: seen.append(("reauth", e.reason)))
    assert len(events) == 4
    events.emit(TokenEvent("token_obtained", "k"))
    events.emit(TokenEvent("needs_reauth", "k", reason="invalid_grant"))
    events.disconnect("token_obtained", obtained)
    events.disconnect("token_obtained", obtained)  # twice: no error
    events.emit(TokenEvent("token_obtained", "k2"))
    assert seen == [("obtained", "k"), ("reauth", "invalid_grant")]
    with pytest.raises(ValueError, match="unknown token event"):
        events.connect("token_exploded", print)  # type: ignore[arg-type]


def test_a_failing_hook_is_logged_and_the_others_still_run(caplog):
    events = TokenEvents()
    seen: list[str] = []

    def broken(event: TokenEvent) -> None:
        raise RuntimeError("boom")

    events.on_token_refreshed(broken)
    events.on_token_refreshed(lambda e: seen.append(e.key))
    with caplog.at_level(logging.ERROR, logger="sfoauth.events"):
        events.emit(TokenEvent("token_refreshed", "k"))
    assert seen == ["k"]
    assert "token_refreshed failed" in caplog.text


def test_async_hook_on_sync_emit_is_refused_loudly(caplog):
    events = TokenEvents()

    async def hook(event: TokenEvent) -> None:  # pragma: no cover - never awaited
        pass

    events.on_token_revoked(hook)
    with caplog.at_level(logging.ERROR, logger="sfoauth.events"):
        events.emit(TokenEvent("token_revoked", "k"))
    assert "use the async token manager" in caplog.text


@pytest.mark.anyio
async def test_aemit_awaits_async_hooks_and_survives_failures(anyio_backend, caplog):
    events = TokenEvents()
    seen: list[str] = []

    async def hook(event: TokenEvent) -> None:
        seen.append(event.key)

    async def broken(event: TokenEvent) -> None:
        raise RuntimeError("boom")

    events.on_token_obtained(broken)
    events.on_token_obtained(hook)
    events.on_token_obtained(lambda e: seen.append("sync"))
    await events.aemit(TokenEvent("token_obtained", "k", Token(access_token="a")))
    assert seen == ["k", "sync"]
    assert "failed" in caplog.text


def test_event_repr_hides_the_token():
    event = TokenEvent("token_obtained", "k", Token(access_token="00D!secret"))
    assert "secret" not in repr(event)
