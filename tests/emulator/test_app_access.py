"""Reference 15.5-15.7 in the emulator: External Client Apps (no password flow,
per-org installation, propagation delay), uninstalled connected apps, and where
``invalid_app_access`` surfaces."""

from __future__ import annotations

import httpx
import pytest
from support.emulator import TOKEN, assert_error, password_form, query_of, web_params

from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    JWT_APP_CLIENT_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.anyio

NOT_INSTALLED = "External client app is not installed in this org"


def _code(emu: SalesforceEmulator, user: str = DEFAULT_USERNAME) -> str:
    return query_of(emu.authorize(user=user))["code"]


async def _exchange(
    client: httpx.AsyncClient, emu: SalesforceEmulator, code: str
) -> httpx.Response:
    data = web_params(emu, grant_type="authorization_code", code=code)
    return await client.post(TOKEN, data=data)


def _other_org(emu: SalesforceEmulator) -> str:
    emu.add_org("globex", org_id="00D000000000002")
    emu.add_user(
        "ann@globex.com", DEFAULT_PASSWORD, user_id="005000000000002", org="globex"
    )
    return "ann@globex.com"


async def test_invalid_app_access_surfaces_at_the_code_exchange_by_default(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].permitted_users = "admin_approved"
    location = emu.authorize()
    assert "code" in query_of(location)  # the authorize redirect succeeds...
    r = await _exchange(client, emu, query_of(location)["code"])
    assert_error(
        r, "invalid_app_access", "user is not admin approved to access this app"
    )


async def test_invalid_app_access_at_authorize_when_configured(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].permitted_users = "admin_approved"
    emu.apps["web"].app_access_stage = "authorize"
    assert query_of(emu.authorize())["error"] == "invalid_app_access"


async def test_eca_not_installed_in_the_users_org(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    web = emu.apps["web"]
    web.kind = "external_client_app"
    user = _other_org(emu)
    web.installed_orgs = {"acme"}
    # Installed where jane logs in: fine.
    r = await _exchange(client, emu, _code(emu))
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    # Not installed in globex: app_not_found at the exchange (default stage).
    r = await _exchange(client, emu, _code(emu, user))
    assert_error(r, "app_not_found", NOT_INSTALLED)
    # Uninstalled later from acme: the stored refresh token answers app_not_found too
    # (the n8n/jsforce report of reference 15.5).
    web.installed_orgs = {"globex"}
    data = web_params(emu, grant_type="refresh_token", refresh_token=refresh)
    assert_error(await client.post(TOKEN, data=data), "app_not_found", NOT_INSTALLED)
    # The exact answer is configurable (OAUTH_EC_APP_NOT_FOUND is also reported).
    web.not_installed_error = ("OAUTH_EC_APP_NOT_FOUND", NOT_INSTALLED)
    assert_error(await client.post(TOKEN, data=data), "OAUTH_EC_APP_NOT_FOUND")
    # Installed again: the grant was never dead.
    web.installed_orgs = None
    assert (await client.post(TOKEN, data=data)).status_code == 200


async def test_eca_not_installed_at_authorize_when_configured(
    emu: SalesforceEmulator,
) -> None:
    web = emu.apps["web"]
    web.kind = "external_client_app"
    web.installed = False
    web.app_access_stage = "authorize"
    assert query_of(emu.authorize(state="s")) == {
        "error": "app_not_found",
        "error_description": NOT_INSTALLED,
        "state": "s",
    }


async def test_jwt_bearer_keeps_its_observed_not_installed_answer(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    import time

    import jwt

    app = emu.apps["jwt"]
    app.kind = "external_client_app"
    app.installed_orgs = {"elsewhere"}
    assert app.private_key_pem is not None
    assertion = jwt.encode(
        {
            "iss": JWT_APP_CLIENT_ID,
            "sub": DEFAULT_USERNAME,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 120,
        },
        app.private_key_pem,
        algorithm="RS256",
    )
    data = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion,
    }
    assert_error(await client.post(TOKEN, data=data), "invalid_grant", NOT_INSTALLED)


async def test_eca_has_no_username_password_flow(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.org.username_password_blocked = False
    data = web_params(emu, **password_form())
    assert (await client.post(TOKEN, data=data)).status_code == 200
    emu.apps["web"].kind = "external_client_app"
    assert_error(
        await client.post(TOKEN, data=data),
        "unsupported_grant_type",
        "grant type not supported",
    )


async def test_a_new_eca_answers_invalid_client_id_until_it_propagates(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    web = emu.apps["web"]
    emu.add_app(
        "eca",
        client_id="3MVG9NewExternalClientApp",
        client_secret="s3cret",
        callback_urls=list(web.callback_urls),
        kind="external_client_app",
        propagation_seconds=300,
    )
    data = {
        "grant_type": "authorization_code",
        "client_id": "3MVG9NewExternalClientApp",
        "client_secret": "s3cret",
        "code": "nope",
        "redirect_uri": web.callback_urls[0],
    }
    assert_error(
        await client.post(TOKEN, data=data),
        "invalid_client_id",
        "client identifier invalid",
    )
    with pytest.raises(ValueError, match="invalid_client_id"):
        emu.authorize(app="eca")
    emu.advance_time(301)  # the emulator's clock, not the wall clock
    assert "code" in query_of(emu.authorize(app="eca"))
    assert_error(await client.post(TOKEN, data=data), "invalid_grant")


async def test_uninstalled_connected_app_needs_the_approval_permission(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].installed = False
    r = await _exchange(client, emu, _code(emu))
    assert_error(r, "invalid_app_access")
    emu.apps["web"].uninstalled_app_error = ("OAUTH_APP_ACCESS_DENIED", "denied")
    assert_error(await _exchange(client, emu, _code(emu)), "OAUTH_APP_ACCESS_DENIED")
    emu.user.can_approve_uninstalled_apps = True
    assert (await _exchange(client, emu, _code(emu))).status_code == 200


async def test_refresh_token_ip_allowlist(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    # Reference 15.4: only addresses in the app's ranges complete the code exchange or
    # the refresh (the emulator's in-process clients come from 127.0.0.1).
    web = emu.apps["web"]
    r = await _exchange(client, emu, _code(emu))
    refresh = r.json()["refresh_token"]
    web.refresh_token_ip_ranges = ["10.0.0.0/8", "192.168.1.0/24"]
    data = web_params(emu, grant_type="refresh_token", refresh_token=refresh)
    assert_error(
        await client.post(TOKEN, data=data),
        "invalid_grant",
        "IP restricted or invalid login hours",
    )
    assert_error(await _exchange(client, emu, _code(emu)), "invalid_grant")
    web.ip_refused_error = ("invalid_grant", "ip address not allowed")  # configurable
    assert_error(
        await client.post(TOKEN, data=data), "invalid_grant", "ip address not allowed"
    )
    web.refresh_token_ip_ranges = ["127.0.0.0/8"]
    assert (await client.post(TOKEN, data=data)).status_code == 200
