"""Issue 12 item 5, reference 15.8: an API whose users sign in with another identity
provider connects them to Salesforce by token exchange (no Salesforce login page),
stored like a login through the router."""

# No `from __future__ import annotations`: FastAPI evaluates the route hints.

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from support.fastapi import REST, header_user, make_api

from sfoauth_core.testing import (
    DEFAULT_USERNAME,
    SalesforceEmulator,
    TokenExchangeConfig,
)
from sfoauth_fastapi import SFOAuth

pytestmark = pytest.mark.anyio

OKTA_TOKEN = "eyJraWQiOiJva3RhIn0.okta-access-token"
OTHER_TOKEN = "eyJraWQiOiJva3RhIn0.someone-else"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _api(sf: SFOAuth) -> FastAPI:
    api = make_api(sf)

    @api.post("/connect-okta")
    async def connect_okta(
        request: Request, user: Annotated[str | None, Depends(header_user)]
    ) -> Any:
        # What the app does after its own Okta sign-in: the Okta token is at hand.
        outside = request.headers["x-okta-token"]
        session = await sf.connect_with_token_exchange(
            user or "", outside, "access_token", request=request
        )
        return {"org": session.org_id, "user": session.user_id}

    return api


@pytest.fixture
def exchange(emu: SalesforceEmulator) -> SalesforceEmulator:
    emu.add_user("ann@acme.com", "pw-ann-123", user_id="005000000000077")
    emu.apps["web"].token_exchange = TokenExchangeConfig(
        subjects={OKTA_TOKEN: DEFAULT_USERNAME, OTHER_TOKEN: "ann@acme.com"}
    )
    return emu


async def test_connects_without_a_salesforce_login_page(
    exchange, sf_factory, browser_factory
) -> None:
    logins: list[Any] = []
    sf = sf_factory(user_key=header_user, on_login=lambda req, s: logins.append(s))
    browser = browser_factory(_api(sf), **{"x-user": "okta|00u1"})
    before = await browser.get("/me")
    assert before.status_code == 401  # not connected yet
    r = await browser.post("/connect-okta", headers={"x-okta-token": OKTA_TOKEN})
    assert r.status_code == 200, r.text
    me = await browser.get("/me")
    assert me.status_code == 200 and me.json()["status"] == 200
    assert exchange.calls("authorization_code") == 0
    assert exchange.calls("urn:ietf:params:oauth:grant-type:token-exchange") == 1
    assert len(logins) == 1
    record = await sf.manager.record(sf.key_for_user("okta|00u1"))
    assert record is not None and record.grant == "token_exchange"
    assert record.token.refresh_token  # refreshed like a login when it expires
    assert exchange.request_log[-1].path == REST


async def test_a_refused_outside_token_is_a_clear_error(
    exchange, sf_factory, browser_factory
) -> None:
    sf = sf_factory(user_key=header_user)
    browser = browser_factory(_api(sf), **{"x-user": "okta|00u1"})
    r = await browser.post("/connect-okta", headers={"x-okta-token": "forged"})
    assert r.status_code == 400
    assert r.json()["detail"] == "SFOAUTH_AUTHORIZATION_FAILED"
    assert await sf.manager.record(sf.key_for_user("okta|00u1")) is None


async def test_another_salesforce_user_never_replaces_a_connection(
    exchange, sf_factory, browser_factory
) -> None:
    sf = sf_factory(user_key=header_user)
    browser = browser_factory(_api(sf), **{"x-user": "okta|00u1"})
    ok = await browser.post("/connect-okta", headers={"x-okta-token": OKTA_TOKEN})
    assert ok.status_code == 200
    r = await browser.post("/connect-okta", headers={"x-okta-token": OTHER_TOKEN})
    assert r.status_code == 409
    assert r.json()["detail"] == "SFOAUTH_CONNECTION_CONFLICT"
    record = await sf.manager.record(sf.key_for_user("okta|00u1"))
    assert record is not None and record.token.user_id == ok.json()["user"]
    revokes = [e for e in exchange.request_log if e.path == "/services/oauth2/revoke"]
    assert len(revokes) == 1  # the refused grant was given back


async def test_no_user_no_exchange(exchange, sf_factory, browser_factory) -> None:
    sf = sf_factory(user_key=header_user)
    browser = browser_factory(_api(sf))  # no x-user header
    r = await browser.post("/connect-okta", headers={"x-okta-token": OKTA_TOKEN})
    assert r.status_code == 401
    assert exchange.calls() == 0  # the outside token was not spent
