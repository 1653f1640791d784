"""Fixtures for the emulator's wire tests (``salesforce_emulator`` comes from the
``sfoauth`` pytest plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from support.emulator import LOGIN

from sfoauth_core.testing import SalesforceEmulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emu(salesforce_emulator: SalesforceEmulator) -> SalesforceEmulator:
    return salesforce_emulator


@pytest.fixture
async def client(emu: SalesforceEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=emu.async_transport(), base_url=LOGIN, follow_redirects=False
    ) as c:
        yield c
