"""SECURITY.md items 21-26 with the Django ORM store on PostgreSQL (row locks).

The scenarios are shared with the other stores (``tests/support/security_lifecycle.py``). Each
manager gets its own ``AsyncDjangoTokenStore``; a critical section runs on the store's
own thread and database connection, so managers contend on PostgreSQL row locks the way
worker processes do. The sync manager on PostgreSQL (threads and real processes) is
covered in ``test_django_postgres.py``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from support import security_lifecycle as lifecycle

from sfoauth_django.storage import AsyncDjangoTokenStore, DjangoTokenStore

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("scenario", lifecycle.SCENARIOS, ids=lambda s: s.__name__)
def test_lifecycle_on_postgres(scenario: Any, pg: str) -> None:
    emu = lifecycle.rotating_emulator()

    async def new_store() -> AsyncDjangoTokenStore:
        return AsyncDjangoTokenStore(DjangoTokenStore(using=pg))

    try:
        anyio.run(scenario, emu, new_store)
    finally:
        async_to_sync(sync_to_async(connections.close_all))()
