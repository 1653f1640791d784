"""Process-wide objects built from the settings: OAuth clients, token managers, caches.

Built on first use and dropped when ``SFOAUTH`` changes (``setting_changed``). The token
managers hold the in-process token cache, so a request with a valid cached token does no
I/O; the user-to-connection map is cached the same way (``CACHE_TTL``).
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from asgiref.sync import sync_to_async
from cachetools import TTLCache
from django.db.models import Q
from django.dispatch import Signal

from sfoauth_core import AsyncSalesforceOAuth, ConnectedApp, SalesforceOAuth
from sfoauth_core.events import EventName, TokenEvent, TokenEvents
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import NEEDS_REAUTH

from . import signals
from .adapter import get_adapter
from .conf import on_reload, sfoauth_settings
from .models import NAMED_PREFIX, get_token_model
from .storage import UNREADABLE_REASON, AsyncDjangoTokenStore, DjangoTokenStore

logger = logging.getLogger("sfoauth.django")

_SIGNALS: dict[EventName, Signal] = {
    "token_obtained": signals.token_obtained,
    "token_refreshed": signals.token_refreshed,
    "token_revoked": signals.token_revoked,
    "needs_reauth": signals.connection_needs_reauth,
}

_guard = threading.RLock()
_oauth: dict[tuple[str | None, str | None], SalesforceOAuth] = {}
_async_oauth: dict[tuple[str | None, str | None], AsyncSalesforceOAuth] = {}
_managers: dict[str | None, TokenManager] = {}
_async_managers: dict[str | None, AsyncTokenManager] = {}
_user_keys: TTLCache[Any, str | None] | None = None
_generation = 0


@on_reload
def reset() -> None:
    """Drop every cached client, manager and mapping (settings changed)."""
    global _user_keys, _generation
    with _guard:
        _generation += 1
        for oauth in _oauth.values():
            oauth.close()
        _oauth.clear()
        _async_oauth.clear()
        _managers.clear()
        _async_managers.clear()
        _user_keys = None


def _send(event: TokenEvent) -> None:
    if event.name == "needs_reauth":
        forget_users_of(event.key)  # request.salesforce turns falsy for them now
    name = (
        event.key[len(NAMED_PREFIX) :] if event.key.startswith(NAMED_PREFIX) else None
    )
    responses = _SIGNALS[event.name].send_robust(
        sender=get_token_model(),
        key=event.key,
        connection=name,
        token=event.token,
        grant=event.grant,
        reason=event.reason,
    )
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "receiver %r of %s failed: %s",
                receiver,
                event.name,
                type(response).__name__,
            )


def _events(asynchronous: bool) -> TokenEvents:
    events = TokenEvents()
    hook: Any = sync_to_async(_send) if asynchronous else _send
    for name in _SIGNALS:
        events.connect(name, hook)
    return events


def http_client(app: ConnectedApp, *, asynchronous: bool) -> Any:
    """An httpx client for ``app``, from the adapter (``HTTP_CLIENT_FACTORY``)."""
    return get_adapter().get_http_client(app, asynchronous=asynchronous)


def _app(connection: str | None, login_url: str | None) -> ConnectedApp:
    if connection is None:
        return sfoauth_settings.to_core_config(login_url=login_url)
    return sfoauth_settings.connection_config(connection)[1]


def oauth(
    connection: str | None = None, *, login_url: str | None = None
) -> SalesforceOAuth:
    """The shared :class:`SalesforceOAuth` of the user app (or a named connection)."""
    key = (connection, login_url)
    with _guard:
        client = _oauth.get(key)
        if client is None:
            app = _app(connection, login_url)
            client = _oauth[key] = SalesforceOAuth(
                app, http_client=http_client(app, asynchronous=False)
            )
        return client


def async_oauth(
    connection: str | None = None, *, login_url: str | None = None
) -> AsyncSalesforceOAuth:
    """The shared :class:`AsyncSalesforceOAuth` of the user app (or a named connection)."""
    key = (connection, login_url)
    with _guard:
        client = _async_oauth.get(key)
        if client is None:
            app = _app(connection, login_url)
            # A factory, not a client: each event loop gets its own client, closed
            # with the loop (asgiref runs each async view of a WSGI site in a new one).
            client = _async_oauth[key] = AsyncSalesforceOAuth(
                app, http_client=functools.partial(http_client, app, asynchronous=True)
            )
        return client


def _manager_options() -> dict[str, Any]:
    return {
        "leeway": sfoauth_settings.LEEWAY,
        "session_timeout": sfoauth_settings.SESSION_TIMEOUT,
        "cache_ttl": sfoauth_settings.CACHE_TTL,
    }


def manager(connection: str | None = None) -> TokenManager:
    """The process-wide :class:`TokenManager` over :class:`DjangoTokenStore`."""
    with _guard:
        found = _managers.get(connection)
        if found is None:
            found = _managers[connection] = TokenManager(
                oauth(connection),
                DjangoTokenStore(),
                events=_events(False),
                **_manager_options(),
            )
        return found


def async_manager(connection: str | None = None) -> AsyncTokenManager:
    """The process-wide :class:`AsyncTokenManager` over :class:`AsyncDjangoTokenStore`."""
    with _guard:
        found = _async_managers.get(connection)
        if found is None:
            found = _async_managers[connection] = AsyncTokenManager(
                async_oauth(connection),
                AsyncDjangoTokenStore(),
                events=_events(True),
                **_manager_options(),
            )
        return found


def forget(key: str) -> None:
    """Drop ``key`` from every manager's in-process cache."""
    with _guard:
        managers: list[Any] = [*_managers.values(), *_async_managers.values()]
    for found in managers:
        found.forget(key)


# The user -> connection key map -------------------------------------------------------
_MISSING = object()


def _user_cache() -> TTLCache[Any, str | None]:
    global _user_keys
    with _guard:
        if _user_keys is None:
            _user_keys = TTLCache(maxsize=10_000, ttl=sfoauth_settings.CACHE_TTL)
        return _user_keys


def cached_user_key(user_pk: Any) -> Any:
    """The cached connection key of ``user_pk`` (``None``: no connection), or ``_MISSING``."""
    try:
        return _user_cache()[user_pk]
    except KeyError:
        return _MISSING


def remember_user_key(user_pk: Any, key: str | None) -> None:
    cache = _user_cache()
    with _guard:
        cache[user_pk] = key


def forget_user(user_pk: Any) -> None:
    cache = _user_cache()
    with _guard:
        cache.pop(user_pk, None)


def forget_users_of(key: str) -> None:
    """Drop the cached user -> connection entries that point at ``key``."""
    cache = _user_cache()
    with _guard:
        for user_pk in [pk for pk, found in cache.items() if found == key]:
            cache.pop(user_pk, None)


def lookup_user_key(user_pk: Any) -> str | None:
    """The key of the user's most recently updated usable connection (one query, then
    cached); a connection that needs re-authorization does not count, except one
    flagged only because its token could not be decrypted: that one is read (and so
    repaired, :meth:`DjangoTokenStore._readable_again`) and counts when its key is back.
    """
    cached = cached_user_key(user_pk)
    if cached is not _MISSING:
        return cached  # type: ignore[no-any-return]
    candidates = (
        get_token_model()
        ._default_manager.filter(user_id=user_pk, name="")
        .exclude(token_ciphertext="")
        .exclude(Q(status=NEEDS_REAUTH) & ~Q(reason=UNREADABLE_REASON))
        .order_by("-updated_at")
        .values_list("key", "status")
    )
    key: str | None = None
    for candidate, status in candidates:
        if status == NEEDS_REAUTH:  # flagged unreadable: usable again if it decrypts
            record = DjangoTokenStore().get(candidate)
            if record is None or record.needs_reauth:
                continue
        key = candidate
        break
    remember_user_key(user_pk, key)
    return key


async def alookup_user_key(user_pk: Any) -> str | None:
    """Async twin of :func:`lookup_user_key`."""
    cached = cached_user_key(user_pk)
    if cached is not _MISSING:
        return cached  # type: ignore[no-any-return]
    return await sync_to_async(lookup_user_key)(user_pk)
