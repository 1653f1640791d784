"""Token managers over the in-process emulator, for the core manager tests: a manager (sync
or async) with an event recorder, and a connected user's first token."""

from __future__ import annotations

from typing import Any

import httpx

from sfoauth_core.events import TokenEvent, TokenEvents
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=0.0)


def issue(emu: SalesforceEmulator, app: str = "web") -> Token:
    return Token.from_response(emu.issue_tokens(app))


class Recorder:
    def __init__(self, events: TokenEvents) -> None:
        self.seen: list[TokenEvent] = []
        for name in (
            "token_obtained",
            "token_refreshed",
            "token_revoked",
            "needs_reauth",
        ):
            events.connect(name, self.seen.append)  # type: ignore[arg-type]

    def names(self) -> list[str]:
        return [e.name for e in self.seen]


def make_manager(emu, store=None, *, app="web", retry=FAST_RETRY, **kwargs: Any):
    config = emu.connected_app(app, **kwargs.pop("app_overrides", {}))
    oauth = SalesforceOAuth(
        config,
        http_client=httpx.Client(transport=emu.transport(), timeout=config.timeout),
    )
    events = TokenEvents()
    manager = TokenManager(
        oauth,
        store if store is not None else InMemoryTokenStore(),
        events=events,
        retry=retry,
        **kwargs,
    )
    return manager, Recorder(events)


def make_async_manager(emu, store=None, *, app="web", retry=FAST_RETRY, **kwargs: Any):
    oauth = AsyncSalesforceOAuth(
        emu.connected_app(app),
        http_client=httpx.AsyncClient(transport=emu.async_transport()),
    )
    events = TokenEvents()
    manager = AsyncTokenManager(
        oauth,
        store if store is not None else AsyncInMemoryTokenStore(),
        events=events,
        retry=retry,
        **kwargs,
    )
    return manager, Recorder(events)


def connect(manager: TokenManager, emu, key="u1") -> Token:
    token = issue(emu)
    manager.save(key, token, revoke_superseded=False)
    return token
