"""Every flow once over real HTTP: the emulator on a loopback port, sync and async clients."""

from __future__ import annotations

import warnings

import anyio
import httpx
import pytest

from sfoauth_core import AsyncSalesforceOAuth, SalesforceOAuth
from sfoauth_core.exceptions import InsecureFlowWarning
from sfoauth_core.flows.web_server import parse_authorization_response
from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)

pytestmark = pytest.mark.loopback


@pytest.fixture
def emu(salesforce_emulator_server: SalesforceEmulator) -> SalesforceEmulator:
    emu = salesforce_emulator_server
    emu.auto_approve = DEFAULT_USERNAME
    emu.org.username_password_blocked = False
    emu.apps["device"].device_interval = 1
    return emu


def test_every_flow_over_loopback_sync(emu):
    base = emu.base_url
    assert base and base.startswith("http://127.0.0.1:")
    web = SalesforceOAuth(
        emu.connected_app(
            "web", redirect_uri="http://localhost:8000/salesforce/callback"
        )
    )
    assert web.app.allow_loopback
    with web, httpx.Client() as browser:
        request = web.authorization_url()
        callback = browser.get(request.url).headers["location"]
        code = parse_authorization_response(callback, expected_state=request.state)
        token = web.exchange_code(code, code_verifier=request.code_verifier)
        assert token.instance_url == base
        refreshed = web.refresh(token)
        assert web.identity(refreshed).username == DEFAULT_USERNAME
        assert web.userinfo(refreshed)["preferred_username"] == DEFAULT_USERNAME
        assert web.introspect(refreshed).active
        with pytest.warns(InsecureFlowWarning):
            ua = web.user_agent_url()
        fragment = browser.get(ua.url).headers["location"]
        assert web.parse_user_agent_response(
            fragment, expected_state=ua.state
        ).access_token
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureFlowWarning)
            assert web.password(
                DEFAULT_USERNAME,
                DEFAULT_PASSWORD,
                security_token=DEFAULT_SECURITY_TOKEN,
            ).access_token
        web.revoke(refreshed)
        assert web.introspect(refreshed).active is False
        assert web.openid_configuration()["issuer"] == base

    with SalesforceOAuth(emu.connected_app("jwt")) as jwt_client:
        assert jwt_client.jwt_bearer().access_token
    with SalesforceOAuth(emu.connected_app("cc")) as cc:
        assert cc.client_credentials().access_token
    with SalesforceOAuth(emu.connected_app("device")) as device_client:
        device = device_client.start_device_flow()
        assert device.verification_uri.startswith(base)
        emu.approve_device(device.user_code)
        assert device_client.poll_device_flow(device, timeout=30).refresh_token
    with SalesforceOAuth(emu.connected_app("asset")) as asset_client:
        access = emu.issue_tokens(app="asset")["access_token"]
        asset = asset_client.asset_token(access, device_id="d-1")
        audience = emu.apps["asset"].asset_token.audiences[0]
        assert (
            asset_client.verify_asset_token(asset.token, audience=audience)["did"]
            == "d-1"
        )


def test_async_client_over_loopback(emu):
    async def main() -> None:
        async with AsyncSalesforceOAuth(emu.connected_app("jwt")) as client:
            token = await client.jwt_bearer()
            assert (await client.identity(token)).username == DEFAULT_USERNAME
        async with AsyncSalesforceOAuth(emu.connected_app("cc")) as cc:
            assert (await cc.client_credentials()).access_token

    anyio.run(main)
