"""Faults, request log, control API, virtual hosts and the sync transport."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest
from support.emulator import MY_DOMAIN, TOKEN, assert_error, web_params

from sfoauth_core.testing import Fault, SalesforceEmulator

pytestmark = pytest.mark.anyio


async def refresh(
    emu: SalesforceEmulator, client: httpx.AsyncClient, token: str
) -> httpx.Response:
    return await client.post(
        TOKEN, data=web_params(emu, grant_type="refresh_token", refresh_token=token)
    )


async def test_status_fault_with_retry_after(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    emu.inject_fault(
        Fault(
            kind="status",
            status=503,
            count=2,
            path=TOKEN,
            grant_type="refresh_token",
            retry_after=7,
        )
    )
    for _ in range(2):
        r = await refresh(emu, client, tokens["refresh_token"])
        assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert (await refresh(emu, client, tokens["refresh_token"])).status_code == 200
    assert emu.calls("refresh_token") == 3
    emu.inject_fault(Fault(kind="status", status=429, grant_type="password"))
    assert (await refresh(emu, client, tokens["refresh_token"])).status_code == 200


async def test_html_and_latency_faults(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.inject_fault(Fault(kind="html", path="/.well-known/openid-configuration"))
    r = await client.get("/.well-known/openid-configuration")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    emu.inject_fault(Fault(kind="latency", seconds=0.2))
    start = time.monotonic()
    assert (await client.get("/id/keys")).status_code == 200
    assert time.monotonic() - start >= 0.2


async def test_hang_fault_is_cut_by_client_timeout(emu: SalesforceEmulator) -> None:
    emu.inject_fault(Fault(kind="hang", path=TOKEN))
    async with httpx.AsyncClient(
        transport=emu.async_transport(), base_url=MY_DOMAIN, timeout=0.3
    ) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post(TOKEN, data={"grant_type": "password"})
    with httpx.Client(
        transport=emu.transport(), base_url=MY_DOMAIN, timeout=0.3
    ) as sync:
        emu.inject_fault(Fault(kind="hang", path=TOKEN))
        with pytest.raises(httpx.ReadTimeout):
            sync.post(TOKEN, data={"grant_type": "password"})


async def test_drop_after_rotation(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    tokens = emu.issue_tokens()
    emu.inject_fault(Fault(kind="drop_after_rotation"))
    r = await refresh(emu, client, tokens["refresh_token"])
    assert r.status_code == 502
    # The rotation happened: the old token is now a replay -> whole family revoked.
    assert_error(
        await refresh(emu, client, tokens["refresh_token"]),
        "invalid_grant",
        "expired access/refresh token",
    )
    assert emu.reuse_detected == 1


async def test_request_log_masks_secrets(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    await refresh(emu, client, tokens["refresh_token"])
    entry = emu.request_log[-1]
    assert (entry.method, entry.host, entry.path, entry.grant_type, entry.status) == (
        "POST",
        "login.salesforce.com",
        TOKEN,
        "refresh_token",
        200,
    )
    assert (
        entry.params["client_secret"] == "***"
        and entry.params["refresh_token"] == "***"
    )
    assert tokens["refresh_token"] not in repr(emu.request_log)
    assert emu.apps["web"].client_secret not in repr(emu.request_log)


async def test_hosts(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    assert (await client.get("https://evil.example.com/id/keys")).status_code == 404
    emu.add_org("sbx", org_id="00DXX0000009sbx", my_domain="acme", sandbox_name="dev")
    emu.add_user(
        "sam@acme.com.dev", "pw-Sandbox1", user_id="005XX0000009sam", org="sbx"
    )
    emu.apps["jwt"].admin_approved_users.add("sam@acme.com.dev")
    sandbox = "https://acme--dev.sandbox.my.salesforce.com"
    doc = (await client.get(sandbox + "/.well-known/openid-configuration")).json()
    assert doc["issuer"] == sandbox
    url = emu.authorize(user="sam@acme.com.dev", host="https://test.salesforce.com")
    from support.emulator import query_of

    code = query_of(url)["code"]
    body = (
        await client.post(
            "https://test.salesforce.com" + TOKEN,
            data=web_params(emu, grant_type="authorization_code", code=code),
        )
    ).json()
    assert body["instance_url"] == sandbox
    assert body["id"].startswith("https://test.salesforce.com/id/00DXX0000009sbx")


async def test_control_api_over_http(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    r = await client.post("/__emulator__/expire", json={"user": "jane@acme.com"})
    assert r.json() == {"expired": 1}
    assert (
        await client.get(
            MY_DOMAIN + "/services/data/",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    ).status_code == 401
    await refresh(emu, client, tokens["refresh_token"])
    assert (
        await client.get("/__emulator__/calls", params={"grant_type": "refresh_token"})
    ).json() == {"count": 1}
    assert (await client.get("/__emulator__/stats")).json()["reuse_detected"] == 0
    log = (await client.get("/__emulator__/log")).json()
    assert log[-1]["grant_type"] == "refresh_token"
    assert (
        await client.patch(
            "/__emulator__/apps/web", json={"is_refresh_token_rotation_enabled": True}
        )
    ).status_code == 200
    assert emu.apps["web"].is_refresh_token_rotation_enabled
    assert (
        await client.patch("/__emulator__/apps/web", json={"bogus": 1})
    ).status_code == 400
    await client.post(
        "/__emulator__/faults",
        json={"kind": "status", "status": 500, "path": "/id/keys"},
    )
    assert (await client.get("/id/keys")).status_code == 500
    url = (await client.post("/__emulator__/authorize", json={"state": "z"})).json()[
        "url"
    ]
    assert "code=" in url and "state=z" in url
    start = (
        await client.post(
            TOKEN,
            data={
                "response_type": "device_code",
                "client_id": emu.apps["device"].client_id,
            },
        )
    ).json()
    assert (
        await client.post(
            "/__emulator__/device/approve", json={"user_code": start["user_code"]}
        )
    ).status_code == 200
    await client.post("/__emulator__/auto-approve", json={"user": "jane@acme.com"})
    assert emu.auto_approve == "jane@acme.com"
    assert (await client.post("/__emulator__/reset")).status_code == 200
    assert emu.calls() == 0 and not emu.apps["web"].is_refresh_token_rotation_enabled
    assert emu.auto_approve is None


def test_sync_transport_from_many_threads(emu: SalesforceEmulator) -> None:
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    tokens = emu.issue_tokens()
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    with httpx.Client(transport=emu.transport(), base_url=MY_DOMAIN) as sync:

        def call(_: int) -> int:
            return sync.post(TOKEN, data=data).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(call, range(100)))
    # Exactly one refresh wins the rotation; every later one is a replay.
    assert statuses.count(200) == 1
    assert statuses.count(400) == 99
    assert emu.calls("refresh_token") == 100


def test_connected_app_helper(emu: SalesforceEmulator) -> None:
    app = emu.connected_app("jwt")
    assert app.client_id == emu.apps["jwt"].client_id
    assert app.login_url == MY_DOMAIN and app.private_key is not None
    web = emu.connected_app("web", scopes=("api",))
    assert web.redirect_uri == "https://app.example.com/callback" and web.scopes == (
        "api",
    )


def test_key_helpers_register_a_jwt_key(emu: SalesforceEmulator) -> None:
    import jwt as pyjwt

    from sfoauth_core.testing import new_private_key_pem, public_key_pem

    pem = new_private_key_pem()
    public = public_key_pem(pem)
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert pyjwt.decode(
        pyjwt.encode({"x": 1}, pem, algorithm="RS256"), public, algorithms=["RS256"]
    ) == {"x": 1}
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError):
        public_key_pem(ec_pem)
