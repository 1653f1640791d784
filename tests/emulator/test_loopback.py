"""The emulator on a loopback port (``serve()`` and the server fixture)."""

from __future__ import annotations

import httpx
import pytest

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.loopback


def test_serve_acts_as_my_domain_and_login_host() -> None:
    emu = SalesforceEmulator()
    with emu.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert emu.connected_app().login_url == base_url
        with httpx.Client(base_url=base_url) as client:
            assert (
                client.get("/.well-known/openid-configuration").json()["issuer"]
                == base_url
            )
            cc = emu.apps["cc"]
            r = client.post(
                "/services/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(cc.client_id, cc.client_secret or ""),
            )
            body = r.json()
            assert r.status_code == 200
            assert body["instance_url"] == base_url and body["id"].startswith(
                base_url + "/id/"
            )
            start = client.post(
                "/services/oauth2/token",
                data={
                    "response_type": "device_code",
                    "client_id": emu.apps["device"].client_id,
                },
            ).json()
            assert start["verification_uri"] == base_url + "/setup/connect"
            emu.loopback_kind = "login"
            r = client.post(
                "/services/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(cc.client_id, cc.client_secret or ""),
            )
            assert (
                r.json()["error_description"] == "request not supported on this domain"
            )
    assert emu.base_url is None


def test_server_fixture(salesforce_emulator_server: SalesforceEmulator) -> None:
    emu = salesforce_emulator_server
    assert emu.base_url
    tokens = emu.issue_tokens(issuer=emu.base_url)
    r = httpx.get(
        emu.base_url + "/services/data/v62.0/",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert r.status_code == 200
    assert (
        httpx.post(emu.base_url + "/__emulator__/expire", json={}).json()["expired"]
        == 1
    )
