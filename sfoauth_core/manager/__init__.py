"""Token lifecycle: :class:`TokenManager` and :class:`AsyncTokenManager`.

Both run the same plans (``_base.py``); see that module for the rules they follow.
"""

from __future__ import annotations

from ..auth import Renewal
from ._async import AsyncOAuth, AsyncTokenManager
from ._base import DEFAULT_CACHE_TTL, DEFAULT_LEEWAY, BaseTokenManager, OAuthClient
from ._sync import SyncOAuth, TokenManager

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_LEEWAY",
    "AsyncOAuth",
    "AsyncTokenManager",
    "BaseTokenManager",
    "OAuthClient",
    "Renewal",
    "SyncOAuth",
    "TokenManager",
]
