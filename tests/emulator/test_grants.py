"""Password, client credentials, JWT bearer, device and asset-token grants."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from support.emulator import MY_DOMAIN, TOKEN, assert_error, password_form

from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    INTEGRATION_USER_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.anyio

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def creds(emu: SalesforceEmulator, name: str) -> dict[str, str]:
    app = emu.apps[name]
    return {"client_id": app.client_id, "client_secret": app.client_secret or ""}


# ---------------------------------------------------------------------- password
async def test_password_blocked_by_default(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    data = password_form(**creds(emu, "web"))
    assert_error(
        await client.post(TOKEN, data=data), "invalid_grant", "authentication failure"
    )
    emu.org.password_blocked_error = (
        "unsupported_grant_type",
        "grant type not supported",
    )
    assert_error(await client.post(TOKEN, data=data), "unsupported_grant_type")


async def test_password_flow(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.org.username_password_blocked = False
    base = {"grant_type": "password", "username": DEFAULT_USERNAME, **creds(emu, "web")}
    assert_error(
        await client.post(TOKEN, data={**base, "password": DEFAULT_PASSWORD}),
        "invalid_grant",
        "authentication failure",
    )
    r = await client.post(
        TOKEN, data={**base, "password": DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN}
    )
    body = r.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    # Session ids from the password flow are not introspectable.
    intro = await client.post(
        "/services/oauth2/introspect",
        data={"token": body["access_token"], **creds(emu, "web")},
    )
    assert intro.json() == {"active": False}
    emu.user.trusted_ip = True
    assert (
        await client.post(TOKEN, data={**base, "password": DEFAULT_PASSWORD})
    ).status_code == 200
    emu.user.ip_restricted = True
    r = await client.post(TOKEN, data={**base, "password": DEFAULT_PASSWORD})
    assert_error(r, "invalid_grant", "IP restricted or invalid login hours")


# ------------------------------------------------------------ client credentials
@pytest.mark.parametrize(
    "host",
    [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        "https://acme.my.salesforce-setup.com",
    ],
)
async def test_client_credentials_rejected_on_login_hosts(
    emu: SalesforceEmulator, client: httpx.AsyncClient, host: str
) -> None:
    r = await client.post(
        host + TOKEN, data={"grant_type": "client_credentials", **creds(emu, "cc")}
    )
    assert_error(r, "invalid_grant", "request not supported on this domain")


async def test_client_credentials_on_my_domain(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["cc"]
    r = await client.post(
        MY_DOMAIN + TOKEN,
        data={"grant_type": "client_credentials"},
        auth=(app.client_id, app.client_secret or ""),
    )
    body = r.json()
    assert r.status_code == 200
    assert "refresh_token" not in body and "expires_in" not in body
    assert body["id"] == f"{MY_DOMAIN}/id/{emu.org.org_id}/{INTEGRATION_USER_ID}"
    assert body["scope"] == "api" and body["signature"] and body["issued_at"]
    body_auth = await client.post(
        MY_DOMAIN + TOKEN, data={"grant_type": "client_credentials", **creds(emu, "cc")}
    )
    assert body_auth.status_code == 200
    no_secret = await client.post(
        MY_DOMAIN + TOKEN,
        data={"grant_type": "client_credentials", "client_id": app.client_id},
    )
    assert_error(no_secret, "invalid_client")
    r = await client.post(
        MY_DOMAIN + TOKEN,
        data={"grant_type": "client_credentials", **creds(emu, "web")},
    )
    assert_error(r, "invalid_grant", "no client credentials user enabled")
    site = await client.post(
        "https://acme.my.site.com/customers" + TOKEN,
        data={"grant_type": "client_credentials", **creds(emu, "cc")},
    )
    assert site.status_code == 200


# ---------------------------------------------------------------------- JWT bearer
def assertion(emu: SalesforceEmulator, **claims: Any) -> str:
    app = emu.apps["jwt"]
    payload = {
        "iss": app.client_id,
        "sub": DEFAULT_USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    assert app.private_key_pem
    return jwt.encode(payload, app.private_key_pem, algorithm="RS256")


async def jwt_post(
    client: httpx.AsyncClient, token: str, host: str = "https://login.salesforce.com"
) -> httpx.Response:
    return await client.post(
        host + TOKEN, data={"grant_type": JWT_GRANT, "assertion": token}
    )


async def test_jwt_bearer_success(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    r = await jwt_post(client, assertion(emu))
    body = r.json()
    assert r.status_code == 200
    assert (
        "refresh_token" not in body
        and "signature" not in body
        and "expires_in" not in body
    )
    assert body["instance_url"] == MY_DOMAIN and body["token_type"] == "Bearer"
    # exp as a numeric string, and in milliseconds (sfdx-core): no upper bound.
    assert (
        await jwt_post(client, assertion(emu, exp=str(int(time.time()) + 180)))
    ).status_code == 200
    assert (
        await jwt_post(client, assertion(emu, exp=int(time.time() * 1000) + 300))
    ).status_code == 200
    # prn wins over sub.
    assert (
        await jwt_post(client, assertion(emu, sub="nobody@x.com", prn=DEFAULT_USERNAME))
    ).status_code == 200
    # My Domain audience accepted by default; configurable.
    assert (
        await jwt_post(client, assertion(emu, aud=MY_DOMAIN), MY_DOMAIN)
    ).status_code == 200
    assert (
        await jwt_post(client, assertion(emu, aud="https://acme.my.site.com/customers"))
    ).status_code == 200
    emu.org.jwt_my_domain_audience = False
    assert_error(
        await jwt_post(client, assertion(emu, aud=MY_DOMAIN)),
        "invalid_grant",
        "audience is invalid",
    )
    emu.apps["jwt"].jwt_include_signature = True
    assert "signature" in (await jwt_post(client, assertion(emu))).json()


async def test_jwt_bearer_errors(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    assert_error(
        await jwt_post(client, assertion(emu, aud="https://test.salesforce.com")),
        "invalid_grant",
        "audience is invalid",
    )
    assert_error(
        await jwt_post(client, assertion(emu, exp=int(time.time()) - 10)),
        "invalid_grant",
    )
    assert_error(
        await jwt_post(client, assertion(emu, iss="3MVG9Nope")),
        "invalid_client_id",
        "client identifier invalid",
    )
    assert_error(
        await jwt_post(client, assertion(emu, sub="integration@acme.com")),
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    other = jwt.encode(
        {
            "iss": emu.apps["jwt"].client_id,
            "sub": DEFAULT_USERNAME,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 60,
        },
        "secret-key-of-32-bytes-for-hs256!",
        algorithm="HS256",
    )
    assert_error(await jwt_post(client, other), "invalid_grant")
    emu.apps["jwt"].installed = False
    assert_error(
        await jwt_post(client, assertion(emu)),
        "invalid_grant",
        "External client app is not installed in this org",
    )


# ---------------------------------------------------------------------- device
async def test_device_flow(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    app = emu.apps["device"]
    r = await client.post(
        MY_DOMAIN + TOKEN,
        files={
            "response_type": (None, "device_code"),
            "client_id": (None, app.client_id),
            "scope": (None, "api refresh_token openid"),
        },
    )
    start = r.json()
    assert set(start) == {"device_code", "user_code", "verification_uri", "interval"}
    assert (len(start["user_code"]) == 8 and start["user_code"].isupper()) or start[
        "user_code"
    ].isdigit()
    assert start["verification_uri"] == f"{MY_DOMAIN}/setup/connect"
    assert start["interval"] == 5
    poll = {
        "grant_type": "device",
        "client_id": app.client_id,
        "code": start["device_code"],
    }
    assert_error(
        await client.post(MY_DOMAIN + TOKEN, data=poll), "authorization_pending"
    )
    emu.approve_device(start["user_code"], user=DEFAULT_USERNAME)
    body = (await client.post(MY_DOMAIN + TOKEN, data=poll)).json()
    assert body["refresh_token"] and body["id_token"] and body["signature"]
    assert emu.calls("device_code") == 1 and emu.calls("device") == 2


async def test_device_denied_expired_slow_down_disabled(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["device"]

    async def start() -> dict[str, Any]:
        r = await client.post(
            TOKEN, data={"response_type": "device_code", "client_id": app.client_id}
        )
        return dict(r.json())

    def poll(d: dict[str, Any]) -> dict[str, str]:
        return {
            "grant_type": "device",
            "client_id": app.client_id,
            "code": d["device_code"],
        }

    denied = await start()
    emu.deny_device(denied["user_code"])
    assert_error(await client.post(TOKEN, data=poll(denied)), "access_denied")
    # Reference 13 item 21: expiry is off by default; ~10 minutes when configured.
    app.device_code_lifetime = 600
    expired = await start()
    emu.advance_time(601)
    assert_error(await client.post(TOKEN, data=poll(expired)), "expired_token")
    app.device_slow_down = True
    fast = await start()
    assert_error(await client.post(TOKEN, data=poll(fast)), "authorization_pending")
    assert_error(await client.post(TOKEN, data=poll(fast)), "slow_down")
    app.is_device_flow_enabled = False
    r = await client.post(
        TOKEN, data={"response_type": "device_code", "client_id": app.client_id}
    )
    assert_error(r, "unsupported_grant_type")


# ---------------------------------------------------------------------- asset token
async def test_asset_token(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    subject = emu.issue_tokens("asset")["access_token"]
    actor = jwt.encode(
        {
            "did": "device-42",
            "Name": "Thermostat",
            "cnf": {"jwk": {"kty": "RSA", "n": "abc", "e": "AQAB"}},
        },
        "k" * 32,
        algorithm="HS256",
    )
    r = await client.post(
        MY_DOMAIN + TOKEN,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token": subject,
            "actor_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "actor_token": actor,
        },
    )
    body = r.json()
    assert r.status_code == 200
    assert body["expires_in"] == 60
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert body["token_type"] == "Bearer"
    header = jwt.get_unverified_header(body["access_token"])
    keys = (await client.get(MY_DOMAIN + "/id/keys")).json()["keys"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == header["kid"])).key
    claims = jwt.decode(
        body["access_token"],
        key,
        algorithms=["RS256"],
        audience="https://devices.example.com",
    )
    assert (
        claims["did"] == "device-42"
        and claims["Name"] == "Thermostat"
        and "cnf" in claims
    )
    assert claims["exp"] - claims["iat"] == 60
