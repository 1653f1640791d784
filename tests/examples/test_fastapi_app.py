"""example_projects/fastapi_app end to end, in-process: the app over ASGI, the emulator
over its in-process transport, the login and consent pages clicked through as HTML."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("aiosqlite")

import httpx
from support.examples import FASTAPI_APP, alogin_and_consent

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    INTEGRATION_USER_ID,
    SalesforceEmulator,
)

if str(FASTAPI_APP) not in sys.path:
    sys.path.insert(0, str(FASTAPI_APP))

from fastapi_example.main import create_app
from fastapi_example.settings import (
    ExampleSettings,
    demo_jwt_key,
    public_pem,
)

APP = "http://127.0.0.1:8000"
MY_DOMAIN = "https://acme.my.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiosqlite runs on asyncio only


@pytest.fixture
def emu() -> SalesforceEmulator:
    return SalesforceEmulator()


@pytest.fixture
def settings(tmp_path: Path) -> ExampleSettings:
    return ExampleSettings.from_env(
        {"EXAMPLE_DATA_DIR": str(tmp_path), "SFOAUTH_EMULATOR_URL": MY_DOMAIN}
    )


@pytest.fixture
async def browser(
    emu: SalesforceEmulator, settings: ExampleSettings
) -> AsyncIterator[httpx.AsyncClient]:
    api = create_app(settings, transport=emu.async_transport())
    async with api.router.lifespan_context(api):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url=APP
        ) as client:
            yield client


def dd(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match is not None, f"#{element_id} missing"
    return match.group(1)


def issued_secrets(emu: SalesforceEmulator) -> list[str]:
    with emu.state.lock:
        return [*emu.state.access_tokens, *emu.state.refresh_tokens]


@pytest.mark.anyio
async def test_connect_call_refresh_integration_status_disconnect(
    emu: SalesforceEmulator,
    settings: ExampleSettings,
    browser: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    pages: list[str] = []

    home = await browser.get("/")
    assert 'id="connection-state" data-connected="no"' in home.text
    assert (
        '<form id="connect-form" method="post" action="/salesforce/login">' in home.text
    )
    assert 'id="connect-button"' in home.text

    # The decorated page sends an unconnected visitor to the login page, whose button
    # (a POST) sends them to Salesforce.
    org = await browser.get("/org")
    assert (org.status_code, org.headers["location"]) == (
        303,
        "/salesforce/login?next=%2Forg",
    )
    page = await browser.get(org.headers["location"])
    assert page.status_code == 200 and "<h1>Connect to Salesforce</h1>" in page.text
    assert '<input type="hidden" name="next" value="/org">' in page.text
    assert emu.calls() == 0
    login = await browser.post("/salesforce/login", data={"next": "/org"})
    assert login.status_code == 303
    authorize = login.headers["location"]
    assert authorize.startswith(MY_DOMAIN + "/services/oauth2/authorize?")
    assert "&code_challenge=" in authorize  # PKCE
    async with httpx.AsyncClient(transport=emu.async_transport()) as at_salesforce:
        callback = await alogin_and_consent(at_salesforce, authorize)
    assert callback.startswith(APP + "/salesforce/callback?code=")
    landed = await browser.get(callback)
    assert (landed.status_code, landed.headers["location"]) == (303, "/org")

    org = await browser.get("/org")
    assert org.status_code == 200
    pages.append(org.text)
    names = re.findall(r'class="account-name">([^<]*)<', org.text)
    assert names == [
        "Acme Corporation",
        "Burlington Textiles",
        "Global Media",
    ]  # ORDER BY Name
    assert dd(org.text, "accounts-total") == "3"
    assert 'id="org-limits"' in org.text and "DailyApiRequests" in org.text
    assert "jane@acme.com" in org.text

    # Salesforce expires the session: the page still works, through one refresh.
    assert emu.expire_access_tokens() == 1
    again = await browser.get("/org")
    assert again.status_code == 200
    assert again.text.count('class="account"') == 3
    assert emu.calls("refresh_token") == 1
    pages.append(again.text)

    # Server to server: the demo key is registered with the emulator, then JWT bearer.
    integration = await browser.get("/integration")
    assert integration.status_code == 200, integration.text
    assert integration.text.count('class="account"') == 3
    assert "integration@acme.com" in integration.text
    assert emu.calls(JWT_GRANT) == 1
    key = (tmp_path / "jwt-demo-key.pem").read_text()
    assert emu.apps["jwt"].certificate_pem == public_pem(key)
    pages.append(integration.text)

    status = await browser.get("/status")
    pages.append(status.text)
    assert dd(status.text, "user-status") == "active"
    assert dd(status.text, "user-org-id") == DEFAULT_ORG_ID
    assert dd(status.text, "user-user-id") == DEFAULT_USER_ID
    assert dd(status.text, "user-instance-url") == MY_DOMAIN
    assert "refresh_token" in dd(status.text, "user-scopes").split()
    assert dd(status.text, "integration-user-id") == INTEGRATION_USER_ID
    assert dd(status.text, "integration-grant") == "jwt_bearer"

    secrets = issued_secrets(emu)
    assert len(secrets) >= 4
    database = (tmp_path / "fastapi_example.sqlite3").read_bytes()
    for secret in secrets:
        assert all(secret not in page for page in pages)
        assert secret.encode() not in database

    disconnected = await browser.post("/salesforce/disconnect?next=/status")
    assert (disconnected.status_code, disconnected.headers["location"]) == (
        303,
        "/status",
    )
    assert any(e.path == "/services/oauth2/revoke" for e in emu.request_log)
    status = await browser.get("/status")
    assert 'id="user-missing"' in status.text
    home = await browser.get("/")
    assert 'data-connected="no"' in home.text
    calls = emu.calls()
    org = await browser.get("/org")
    assert org.status_code == 303
    # Nothing reconnects without a click: the login page says why the user is there.
    page = await browser.get(org.headers["location"])
    assert "You disconnected Salesforce." in page.text
    assert emu.calls() == calls


@pytest.mark.anyio
async def test_a_revoked_grant_sends_the_user_back_to_login(
    emu: SalesforceEmulator, browser: httpx.AsyncClient
) -> None:
    emu.auto_approve = "jane@acme.com"
    login = await browser.post("/salesforce/login", data={"next": "/org"})
    async with httpx.AsyncClient(transport=emu.async_transport()) as at_salesforce:
        answer = await at_salesforce.get(login.headers["location"])
    await browser.get(answer.headers["location"])
    with emu.state.lock:
        refresh = next(iter(emu.state.refresh_tokens))
    async with httpx.AsyncClient(transport=emu.async_transport()) as client:
        revoked = await client.post(
            MY_DOMAIN + "/services/oauth2/revoke", data={"token": refresh}
        )
    assert revoked.status_code == 200
    emu.expire_access_tokens()
    org = await browser.get("/org")
    assert org.status_code == 303
    assert org.headers["location"].startswith("/salesforce/login?next=")
    page = await browser.get(org.headers["location"])
    assert "Your Salesforce connection needs to be renewed." in page.text
    status = await browser.get("/status")
    assert 'id="user-status">needs_reauth<' in status.text
    assert dd(status.text, "user-reason") != "—"


def test_real_org_settings_from_the_environment(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    demo_jwt_key(key)
    env: dict[str, Any] = {
        "EXAMPLE_DATA_DIR": str(tmp_path / "data"),
        "EXAMPLE_APP_URL": "https://app.example.com",
        "SFOAUTH_CLIENT_ID": "3MVG9RealApp",
        "SFOAUTH_CLIENT_SECRET": "a-secret",
        "SFOAUTH_LOGIN_URL": "https://acme.my.salesforce.com",
        "SFOAUTH_JWT_PRIVATE_KEY_FILE": str(key),
        "SFOAUTH_JWT_USERNAME": "integration@acme.com",
    }
    settings = ExampleSettings.from_env(env)
    assert settings.emulator_url is None
    assert settings.app.client_id == "3MVG9RealApp"
    assert settings.app.redirect_uri == "https://app.example.com/salesforce/callback"
    assert settings.app.allow_loopback is False
    assert settings.cookie_secure is True
    assert settings.integration is not None
    assert settings.integration.client_id == "3MVG9RealApp"
    assert settings.integration.username == "integration@acme.com"
    assert settings.register_jwt_key is False
    assert (tmp_path / "data" / "token.key").stat().st_mode & 0o077 == 0

    del env["SFOAUTH_JWT_PRIVATE_KEY_FILE"]
    assert ExampleSettings.from_env(env).integration is None


@pytest.mark.anyio
async def test_without_an_integration_connection_the_page_says_how_to_add_one(
    tmp_path: Path, emu: SalesforceEmulator
) -> None:
    settings = ExampleSettings.from_env(
        {
            "EXAMPLE_DATA_DIR": str(tmp_path),
            "SFOAUTH_CLIENT_ID": "3MVG9RealApp",
            "SFOAUTH_LOGIN_URL": MY_DOMAIN,
        }
    )
    api = create_app(settings, transport=emu.async_transport())
    async with api.router.lifespan_context(api):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url=APP
        ) as client:
            page = await client.get("/integration")
            status = await client.get("/status")
    assert 'id="integration-not-configured"' in page.text
    assert 'id="integration-missing"' in status.text
