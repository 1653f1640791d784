"""Web server flow, PKCE and token-endpoint mechanics (reference 2, 4.1-4.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import httpx
import jwt
import pytest
from support.emulator import MY_DOMAIN, TOKEN, assert_error, query_of, web_params

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.anyio


def challenge_for(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def code_from(url: str) -> str:
    return query_of(url)["code"]


async def test_ids_are_real_18_char_forms() -> None:
    assert DEFAULT_ORG_ID == "00DXX0000001abc2AA"
    assert DEFAULT_USER_ID == "005XX000001xyzQYAQ"


async def test_code_exchange_success_shape(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    url = emu.authorize(state="s1", nonce="n-1")
    assert query_of(url)["state"] == "s1"
    # The code is base64-like, ends in "==" and is URL-encoded in the redirect.
    assert "%3D%3D" in url
    code = code_from(url)
    assert code.endswith("==")
    r = await client.post(
        TOKEN, data=web_params(emu, grant_type="authorization_code", code=code)
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;charset=UTF-8"
    assert r.headers["cache-control"] == "no-cache, no-store"
    assert r.headers["pragma"] == "no-cache"
    body = r.json()
    assert "expires_in" not in body
    assert re.fullmatch(r"00DXX0000001abc![A-Za-z0-9._]+", body["access_token"])
    assert body["refresh_token"].startswith("5Aep")
    assert body["instance_url"] == MY_DOMAIN
    assert (
        body["id"]
        == f"https://login.salesforce.com/id/{DEFAULT_ORG_ID}/{DEFAULT_USER_ID}"
    )
    assert body["token_type"] == "Bearer"
    assert isinstance(body["issued_at"], str) and len(body["issued_at"]) == 13
    assert body["scope"].split() == emu.apps["web"].scopes
    secret = emu.apps["web"].client_secret
    assert secret
    mac = hmac.new(secret.encode(), (body["id"] + body["issued_at"]).encode(), "sha256")
    assert body["signature"] == base64.b64encode(mac.digest()).decode()
    # ID token: RS256, kid published at /id/keys, claims of reference 2.4.
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["kid"].isdigit()
    keys = (await client.get("/id/keys")).json()["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        body["id_token"], key, algorithms=["RS256"], audience=emu.apps["web"].client_id
    )
    assert claims["iss"] == "https://login.salesforce.com"
    assert claims["sub"] == body["id"]
    assert claims["exp"] - claims["iat"] == 120
    assert claims["nonce"] == "n-1"
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_code_is_single_use_and_replay_revokes(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    code = code_from(emu.authorize())
    data = web_params(emu, grant_type="authorization_code", code=code)
    first = (await client.post(TOKEN, data=data)).json()
    assert_error(
        await client.post(TOKEN, data=data),
        "invalid_grant",
        "expired authorization code",
    )
    # Tokens issued from the replayed code are revoked.
    r = await client.get(
        f"{MY_DOMAIN}/services/data/v62.0/",
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert r.status_code == 401
    refresh = web_params(
        emu, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert_error(
        await client.post(TOKEN, data=refresh),
        "invalid_grant",
        "expired access/refresh token",
    )


async def test_code_errors(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    bad = web_params(emu, grant_type="authorization_code", code="nope==")
    assert_error(
        await client.post(TOKEN, data=bad),
        "invalid_grant",
        "invalid authorization code",
    )
    code = code_from(emu.authorize())
    wrong_uri = web_params(
        emu,
        grant_type="authorization_code",
        code=code,
        redirect_uri="http://localhost:8000/salesforce/callback",
    )
    assert_error(await client.post(TOKEN, data=wrong_uri), "redirect_uri_mismatch")
    no_secret = web_params(emu, grant_type="authorization_code", code=code)
    del no_secret["client_secret"]
    assert_error(
        await client.post(TOKEN, data=no_secret),
        "invalid_client",
        "invalid client credentials",
    )
    wrong_secret = web_params(
        emu, grant_type="authorization_code", code=code, client_secret="wrong"
    )
    assert_error(
        await client.post(TOKEN, data=wrong_secret),
        "invalid_client",
        "invalid client credentials",
    )
    other_client = web_params(
        emu, grant_type="authorization_code", code=code, client_id="3MVG9Unknown"
    )
    assert_error(
        await client.post(TOKEN, data=other_client),
        "invalid_client_id",
        "client identifier invalid",
    )
    # Still usable after those failures, then expired after 15 minutes for a new code.
    ok = await client.post(
        TOKEN, data=web_params(emu, grant_type="authorization_code", code=code)
    )
    assert ok.status_code == 200
    late = code_from(emu.authorize())
    emu.advance_time(15 * 60 + 1)
    late_data = web_params(emu, grant_type="authorization_code", code=late)
    assert_error(
        await client.post(TOKEN, data=late_data),
        "invalid_grant",
        "expired authorization code",
    )


async def test_code_bound_to_client(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    code = code_from(emu.authorize())
    data = web_params(emu, "device", grant_type="authorization_code", code=code)
    assert_error(await client.post(TOKEN, data=data), "invalid_grant")


async def test_pkce_rules(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    verifier = secrets.token_urlsafe(128)  # 171 chars: longer than RFC 7636 allows
    assert len(verifier) > 128
    # No code_challenge_method: S256 is assumed.
    code = code_from(emu.authorize(code_challenge=challenge_for(verifier)))
    base = web_params(emu, grant_type="authorization_code", code=code)
    assert_error(await client.post(TOKEN, data=base), "invalid_grant")
    assert_error(
        await client.post(TOKEN, data={**base, "code_verifier": "x" * 50}),
        "invalid_request",
    )
    ok = await client.post(TOKEN, data={**base, "code_verifier": verifier})
    assert ok.status_code == 200


async def test_public_client_pkce_only(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["public"]
    # PKCE required: no challenge -> error redirect.
    url = emu.authorize(app="public", state="st")
    assert query_of(url)["error"] == "invalid_request"
    assert query_of(url)["state"] == "st"
    verifier = secrets.token_urlsafe(64)
    code = code_from(
        emu.authorize(app="public", code_challenge=challenge_for(verifier))
    )
    data = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "code": code,
        "redirect_uri": app.callback_urls[0],
        "code_verifier": verifier,
        "format": "json",
    }
    body = (await client.post(TOKEN, data=data)).json()
    assert body["refresh_token"]
    # Secret optional for refresh too; a wrong secret, if sent, is still rejected.
    refresh = {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "refresh_token": body["refresh_token"],
    }
    assert (await client.post(TOKEN, data=refresh)).status_code == 200
    bad = {**refresh, "client_secret": "wrong"}
    assert_error(
        await client.post(TOKEN, data=bad),
        "invalid_client",
        "invalid client credentials",
    )


async def test_basic_auth_multipart_and_unknown_params(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["web"]
    code = code_from(emu.authorize())
    r = await client.post(
        TOKEN,
        files={
            "grant_type": (None, "authorization_code"),
            "code": (None, code),
            "redirect_uri": (None, app.callback_urls[0]),
            "device_id": (None, "abc"),
        },
        auth=(app.client_id, app.client_secret or ""),
    )
    assert r.status_code == 200, r.text


async def test_formats(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    data = web_params(
        emu,
        grant_type="authorization_code",
        code=code_from(emu.authorize()),
        format="urlencoded",
    )
    r = await client.post(TOKEN, data=data)
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "access_token=00DXX0000001abc%21" in r.text
    data = web_params(
        emu, grant_type="authorization_code", code=code_from(emu.authorize())
    )
    r = await client.post(TOKEN, data=data, headers={"Accept": "application/xml"})
    assert r.headers["content-type"].startswith("application/xml")
    assert "<OAuth><access_token>" in r.text
    r = await client.post(
        TOKEN, data={"grant_type": "nope"}, headers={"Accept": "application/json"}
    )
    assert_error(r, "unsupported_grant_type", "grant type not supported")


async def test_unknown_client_and_grant(client: httpx.AsyncClient) -> None:
    r = await client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "client_id": "3MVG9Nope",
            "refresh_token": "x",
        },
    )
    assert_error(r, "invalid_client_id", "client identifier invalid")
    assert_error(
        await client.post(TOKEN, data={}),
        "unsupported_grant_type",
        "grant type not supported",
    )
    r = await client.post(
        TOKEN, data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    )
    assert_error(r, "unsupported_grant_type")


async def test_hybrid_auth_code(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].scopes.append("lightning")
    code = code_from(emu.authorize(scope="api lightning refresh_token"))
    body = (
        await client.post(
            TOKEN, data=web_params(emu, grant_type="hybrid_auth_code", code=code)
        )
    ).json()
    assert body["lightning_sid"] and body["lightning_domain"] and body["csrf_token"]
    hybrid = web_params(
        emu, grant_type="hybrid_refresh", refresh_token=body["refresh_token"]
    )
    assert "lightning_sid" in (await client.post(TOKEN, data=hybrid)).json()
