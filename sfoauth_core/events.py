"""Token lifecycle events: a small hook registry that framework adapters turn into
signals.

Four events, each delivered as one :class:`TokenEvent`:

* ``token_obtained`` — a new grant was stored (login, JWT bearer or client credentials
  mint). ``event.token`` is the new token.
* ``token_refreshed`` — the token was renewed (refresh, or a re-mint for JWT bearer and
  client credentials connections) and saved. ``event.token`` is the new token.
* ``token_revoked`` — the connection was disconnected: revoked at Salesforce (best
  effort) and removed locally. ``event.token`` is the token that was removed.
* ``needs_reauth`` — Salesforce refused the grant; the connection is flagged and kept.
  ``event.reason`` says why (Salesforce's error and description, never a token).

Hooks run after the store write they describe. A hook that raises is logged and skipped:
the token is already saved, and failing the caller's request would make it look as if
the refresh itself had failed. The async manager awaits hooks that return awaitables.

Example:
    >>> events = TokenEvents()
    >>> @events.on_token_refreshed
    ... def log_refresh(event: TokenEvent) -> None:
    ...     print("refreshed", event.key)
    >>> manager = TokenManager(oauth, store, events=events)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .tokens import Token

__all__ = ["EventName", "TokenEvent", "TokenEventHook", "TokenEvents"]

logger = logging.getLogger("sfoauth.events")

EventName = Literal[
    "token_obtained", "token_refreshed", "token_revoked", "needs_reauth"
]
_NAMES: tuple[EventName, ...] = (
    "token_obtained",
    "token_refreshed",
    "token_revoked",
    "needs_reauth",
)


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """What happened to which connection.

    Attributes:
        name: one of ``token_obtained``, ``token_refreshed``, ``token_revoked``,
            ``needs_reauth``.
        key: the connection's key in the store.
        token: the token concerned (masked in ``repr``), when there is one.
        grant: how the connection was obtained (``authorization_code``,
            ``jwt_bearer``...).
        reason: for ``needs_reauth``: Salesforce's error, safe to show and log.
    """

    name: EventName
    key: str
    token: Token | None = field(default=None, repr=False)
    grant: str | None = None
    reason: str = ""


TokenEventHook = Callable[[TokenEvent], Any]


class TokenEvents:
    """A registry of hooks per event. Register with the ``on_*`` decorators."""

    def __init__(self) -> None:
        self._hooks: dict[EventName, list[TokenEventHook]] = {n: [] for n in _NAMES}

    def connect(self, name: EventName, hook: TokenEventHook) -> TokenEventHook:
        """Run ``hook(event)`` whenever ``name`` fires; returns ``hook``
        (decorator-friendly).

        Raises:
            ValueError: ``name`` is not an event.
        """
        if name not in self._hooks:
            raise ValueError(f"unknown token event {name!r}; expected one of {_NAMES}")
        self._hooks[name].append(hook)
        return hook

    def disconnect(self, name: EventName, hook: TokenEventHook) -> None:
        """Stop running ``hook`` for ``name`` (no error if it was not connected)."""
        try:
            self._hooks[name].remove(hook)
        except (KeyError, ValueError):
            pass

    def on_token_obtained(self, hook: TokenEventHook) -> TokenEventHook:
        """Decorator: run ``hook`` after a new grant is stored."""
        return self.connect("token_obtained", hook)

    def on_token_refreshed(self, hook: TokenEventHook) -> TokenEventHook:
        """Decorator: run ``hook`` after a refresh or re-mint is stored."""
        return self.connect("token_refreshed", hook)

    def on_token_revoked(self, hook: TokenEventHook) -> TokenEventHook:
        """Decorator: run ``hook`` after a connection is revoked and removed."""
        return self.connect("token_revoked", hook)

    def on_needs_reauth(self, hook: TokenEventHook) -> TokenEventHook:
        """Decorator: run ``hook`` after a connection is flagged for
        re-authorization."""
        return self.connect("needs_reauth", hook)

    def emit(self, event: TokenEvent) -> None:
        """Run every hook for ``event`` (sync). Awaitable results are closed and
        logged."""
        for hook in tuple(self._hooks[event.name]):
            try:
                result = hook(event)
            except Exception:
                logger.exception("token event hook for %s failed", event.name)
                continue
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                logger.error(
                    "async hook for %s ignored: use the async token manager", event.name
                )

    async def aemit(self, event: TokenEvent) -> None:
        """Run every hook for ``event``, awaiting those that return awaitables."""
        for hook in tuple(self._hooks[event.name]):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("token event hook for %s failed", event.name)

    def __len__(self) -> int:
        return sum(len(hooks) for hooks in self._hooks.values())
