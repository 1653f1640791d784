"""Token stores: the protocols, an in-memory reference store, Redis stores, the
encrypted file store of the ``sfoauth`` command and the cipher.

The Redis stores need the ``redis`` extra (``pip install sfoauth[redis]``); they are
importable from here only when ``redis`` is installed.
"""

from __future__ import annotations

from .base import (
    ACTIVE,
    MINTED_GRANTS,
    NEEDS_REAUTH,
    AsyncTokenStore,
    ConnectionStatus,
    TokenRecord,
    TokenStore,
    VersionConflictError,
    next_record,
    record_from_bytes,
    record_to_bytes,
)
from .cipher import TokenCipher
from .file import AsyncFileTokenStore, FileTokenStore
from .memory import AsyncInMemoryTokenStore, InMemoryTokenStore

try:
    from .redis import AsyncRedisTokenStore, RedisTokenStore
except ImportError:  # pragma: no cover - the redis extra is not installed
    pass

__all__ = [
    "ACTIVE",
    "MINTED_GRANTS",
    "NEEDS_REAUTH",
    "AsyncFileTokenStore",
    "AsyncInMemoryTokenStore",
    "AsyncRedisTokenStore",
    "AsyncTokenStore",
    "ConnectionStatus",
    "FileTokenStore",
    "InMemoryTokenStore",
    "RedisTokenStore",
    "TokenCipher",
    "TokenRecord",
    "TokenStore",
    "VersionConflictError",
    "next_record",
    "record_from_bytes",
    "record_to_bytes",
]
