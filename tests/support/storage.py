"""Helpers of the storage tests (a module of its own, not ``conftest``: several test
directories have a ``conftest.py``, and ``from conftest import ...`` would pick whichever
was imported last when more than one directory is collected)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token

CIPHER_KEY = TokenCipher.generate_key()


def make_token(n: int = 1, **changes: Any) -> Token:
    values: dict[str, Any] = {
        "access_token": f"00Dxx0000001abc!AQ0.access-{n}-{uuid.uuid4().hex}",
        "refresh_token": f"5Aep861.refresh-{n}-{uuid.uuid4().hex}",
        "instance_url": "https://acme.my.salesforce.com",
        "id_url": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
        "org_id": "00DXX0000001abcEAA",
        "user_id": "005XX000001xyzQAA",
        "issued_at": 1767229200.456,
        "scopes": ("api", "refresh_token"),
    }
    values.update(changes)
    return Token(**values)


async def call(result: Any) -> Any:
    """Await async store results; pass sync ones through."""
    return await result if inspect.isawaitable(result) else result


@asynccontextmanager
async def hold(store: Any, key: str) -> AsyncIterator[None]:
    manager = store.lock(key)
    if hasattr(manager, "__aenter__"):
        async with manager:
            yield
    else:
        with manager:
            yield
