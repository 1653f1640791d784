"""``TokenManager.exchange`` / ``AsyncTokenManager.exchange`` (reference 15.8): a
connection obtained by exchanging another identity provider's token is stored like a
login, refreshed like one when Salesforce granted a refresh token, and flagged for a new
exchange (never silently re-sent) when it did not."""

from __future__ import annotations

import anyio
import httpx
import pytest

from sfoauth_core.exceptions import InvalidGrantError, ReauthorizationRequired
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import (
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    SalesforceEmulator,
    TokenExchangeConfig,
)

KEY = "okta|00u1abcd"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].token_exchange = TokenExchangeConfig(
        subjects={"okta-token": DEFAULT_USERNAME}
    )
    return emulator


def _manager(emu: SalesforceEmulator) -> TokenManager:
    client = httpx.Client(transport=emu.transport())
    return TokenManager(
        SalesforceOAuth(emu.connected_app("web"), http_client=client),
        InMemoryTokenStore(),
    )


def test_an_exchanged_connection_is_stored_and_refreshed_like_a_login(emu):
    manager = _manager(emu)
    token = manager.exchange(KEY, "okta-token", "id_token")
    record = manager.store.get(KEY)
    assert record is not None and record.grant == "token_exchange"
    assert token.user_id == DEFAULT_USER_ID and token.refresh_token
    emu.expire_access_tokens()
    renewed = manager.refresh(KEY, stale=token.access_token)
    assert renewed.access_token != token.access_token
    assert emu.calls("refresh_token") == 1
    assert emu.calls(GRANT) == 1  # the outside token was sent once


def test_without_a_refresh_token_the_connection_asks_for_a_new_exchange(emu):
    emu.apps["web"].scopes = ["api"]  # no refresh_token scope granted
    manager = _manager(emu)
    token = manager.exchange(KEY, "okta-token", "jwt")
    assert token.refresh_token is None
    emu.expire_access_tokens()
    with pytest.raises(ReauthorizationRequired, match="exchange a fresh token"):
        manager.refresh(KEY, stale=token.access_token)
    assert emu.calls(GRANT) == 1  # never re-sent on its own
    record = manager.store.get(KEY)
    assert record is not None and record.needs_reauth


def test_a_refused_exchange_stores_nothing(emu):
    manager = _manager(emu)
    with pytest.raises(InvalidGrantError):
        manager.exchange(KEY, "forged", "jwt")
    assert manager.store.get(KEY) is None


def test_async_twin(emu):
    async def main() -> None:
        client = httpx.AsyncClient(transport=emu.async_transport())
        manager = AsyncTokenManager(
            AsyncSalesforceOAuth(emu.connected_app("web"), http_client=client),
            AsyncInMemoryTokenStore(),
        )
        token = await manager.exchange(KEY, "okta-token", "access_token")
        assert (await manager.valid_token(KEY)).access_token == token.access_token
        await client.aclose()

    anyio.run(main)
