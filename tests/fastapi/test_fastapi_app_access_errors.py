"""Issue 12 item 3: app-access refusals (reference 15.4-15.7) reach the user as a clear
error (page or JSON) with what their Salesforce admin must fix, at the authorize
redirect and at the code exchange alike, and from a route whose refresh is refused."""

# No `from __future__ import annotations`: FastAPI evaluates route hints.

import pytest
from support.fastapi import authorize, make_api

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio

HTML = {"accept": "text/html"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _callback(emu, browser, **headers):
    login = await browser.post("/salesforce/login", data={"next": "/me"})
    return await browser.get(await authorize(emu, login), headers=headers)


@pytest.mark.parametrize("stage", ["code_exchange", "authorize"])
async def test_admin_approval_missing_json(
    emu: SalesforceEmulator, sf_factory, browser_factory, stage
) -> None:
    emu.apps["web"].permitted_users = "admin_approved"
    emu.apps["web"].app_access_stage = stage
    browser = browser_factory(make_api(sf_factory()))
    r = await _callback(emu, browser)
    assert r.status_code == 403
    body = r.json()
    assert body["detail"] == "SFOAUTH_APP_ACCESS_DENIED"
    assert "permission set" in body["hint"]


async def test_eca_not_installed_page(
    emu: SalesforceEmulator, sf_factory, browser_factory
) -> None:
    emu.apps["web"].kind = "external_client_app"
    emu.apps["web"].installed = False
    browser = browser_factory(make_api(sf_factory()))
    r = await _callback(emu, browser, **HTML)
    assert r.status_code == 403
    assert 'data-code="SFOAUTH_APP_ACCESS_DENIED"' in r.text
    assert 'id="sfoauth-hint"' in r.text and "External Client App" in r.text


async def test_app_uninstalled_later_surfaces_from_a_route(
    emu: SalesforceEmulator, sf_factory, browser_factory
) -> None:
    from support.fastapi import browser_login

    sf = sf_factory()
    browser = browser_factory(make_api(sf))
    assert (await browser_login(emu, browser)).status_code == 303
    emu.apps["web"].kind = "external_client_app"
    emu.apps["web"].installed = False  # the admin uninstalled it from the org
    emu.expire_access_tokens()
    r = await browser.get("/me")
    assert r.status_code == 403
    assert r.json()["detail"] == "SFOAUTH_APP_ACCESS_DENIED"
    assert "install" in r.json()["hint"]


async def test_ip_restricted_user(
    emu: SalesforceEmulator, sf_factory, browser_factory
) -> None:
    emu.user.ip_restricted = True
    browser = browser_factory(make_api(sf_factory()))
    r = await _callback(emu, browser)
    assert r.status_code == 403
    assert "egress IP" in r.json()["hint"]
