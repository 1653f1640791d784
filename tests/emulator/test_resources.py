"""Revoke, introspect, userinfo, identity URL, discovery, keys and REST stub."""

from __future__ import annotations

import httpx
import pytest
from support.emulator import MY_DOMAIN, TOKEN, assert_error, web_params

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    INTEGRATION_USER_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.anyio

INVALID = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_revoke(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    tokens = emu.issue_tokens()
    r = await client.post(
        "/services/oauth2/revoke", data={"token": tokens["refresh_token"]}
    )
    assert r.status_code == 200 and r.content == b""
    # Revoking the refresh token kills its access tokens.
    assert (
        await client.get(
            MY_DOMAIN + "/services/data/", headers=bearer(tokens["access_token"])
        )
    ).status_code == 401
    r = await client.post("/services/oauth2/revoke", data={"token": "unknown"})
    assert_error(r, "invalid_token")
    other = emu.issue_tokens()
    assert (
        await client.get(
            "/services/oauth2/revoke", params={"token": other["access_token"]}
        )
    ).status_code == 200
    jsonp = await client.get(
        "/services/oauth2/revoke", params={"token": "nope", "callback": "cb"}
    )
    assert jsonp.text == 'cb({"error":"invalid_token"});'
    # The refresh token of "other" still works (only the access token was revoked).
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=other["refresh_token"]
    )
    assert (await client.post(TOKEN, data=data)).status_code == 200


async def test_introspect(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    tokens = emu.issue_tokens()
    web = emu.apps["web"]
    creds = {"client_id": web.client_id, "client_secret": web.client_secret or ""}
    r = await client.post(
        "/services/oauth2/introspect",
        data={
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            **creds,
        },
    )
    body = r.json()
    assert body["active"] is True and body["token_type"] == "access_token"
    assert body["client_id"] == web.client_id and body["username"] == "jane@acme.com"
    assert body["sub"] == tokens["id"]
    assert body["exp"] - body["iat"] == 7200 and body["nbf"] == body["iat"]
    assert body["scope"] == tokens["scope"]
    refresh = (
        await client.post(
            "/services/oauth2/introspect",
            data={"token": tokens["refresh_token"], **creds},
        )
    ).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    cc = emu.apps["cc"]
    other = {"client_id": cc.client_id, "client_secret": cc.client_secret or ""}
    assert (
        await client.post(
            "/services/oauth2/introspect",
            data={"token": tokens["access_token"], **other},
        )
    ).json() == {"active": False}
    cc.is_introspect_all_tokens = True
    assert (
        await client.post(
            "/services/oauth2/introspect",
            data={"token": tokens["access_token"], **other},
        )
    ).json()["active"] is True
    assert (
        await client.post(
            "/services/oauth2/introspect", data={"token": "junk", **creds}
        )
    ).json() == {"active": False}
    no_auth = await client.post(
        "/services/oauth2/introspect",
        data={"token": tokens["access_token"], "client_id": web.client_id},
    )
    assert_error(no_auth, "invalid_client")


async def test_userinfo_and_identity(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    info = (
        await client.get(
            MY_DOMAIN + "/services/oauth2/userinfo",
            headers=bearer(tokens["access_token"]),
        )
    ).json()
    for field in (
        "sub",
        "user_id",
        "organization_id",
        "preferred_username",
        "nickname",
        "name",
        "email",
        "email_verified",
        "given_name",
        "family_name",
        "zoneinfo",
        "photos",
        "profile",
        "picture",
        "address",
        "is_salesforce_integration_user",
        "urls",
        "active",
        "user_type",
        "language",
        "locale",
        "utcOffset",
        "updated_at",
        "is_app_installed",
    ):
        assert field in info, field
    assert (
        info["user_id"] == DEFAULT_USER_ID and info["organization_id"] == DEFAULT_ORG_ID
    )
    assert (
        await client.get(
            "/services/oauth2/userinfo", params={"oauth_token": tokens["access_token"]}
        )
    ).status_code == 200
    assert (
        await client.get("/services/oauth2/userinfo", headers=bearer("junk"))
    ).status_code == 401
    r = await client.get(tokens["id"], headers=bearer(tokens["access_token"]))
    ident = r.json()
    assert ident["id"] == tokens["id"] and ident["username"] == "jane@acme.com"
    assert ident["urls"]["rest"] == f"{MY_DOMAIN}/services/data/v{{version}}/"
    versioned = (
        await client.get(
            tokens["id"],
            params={"version": "62.0", "oauth_token": tokens["access_token"]},
        )
    ).json()
    assert versioned["urls"]["rest"] == f"{MY_DOMAIN}/services/data/v62.0/"
    xml = await client.get(
        tokens["id"], params={"format": "xml"}, headers=bearer(tokens["access_token"])
    )
    assert (
        xml.text.startswith("<?xml")
        and "<username>jane@acme.com</username>" in xml.text
    )
    bad = await client.get(tokens["id"], headers=bearer("junk"))
    assert bad.status_code == 403 and bad.text == "Bad_OAuth_Token"
    # Another user's identity needs api/full scope.
    other = f"https://login.salesforce.com/id/{DEFAULT_ORG_ID}/{INTEGRATION_USER_ID}"
    assert (
        await client.get(other, headers=bearer(tokens["access_token"]))
    ).status_code == 200
    limited = emu.issue_tokens(scopes="openid id")
    assert (
        await client.get(other, headers=bearer(limited["access_token"]))
    ).status_code == 403


async def test_discovery_keys_auth_configuration(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/.well-known/openid-configuration")).json()
    assert doc["issuer"] == "https://login.salesforce.com"
    assert doc["token_endpoint"] == "https://login.salesforce.com/services/oauth2/token"
    assert doc["jwks_uri"] == "https://login.salesforce.com/id/keys"
    assert doc["response_types_supported"] == ["code", "token", "token id_token"]
    assert len(doc["scopes_supported"]) == 36
    for absent in (
        "grant_types_supported",
        "code_challenge_methods_supported",
        "end_session_endpoint",
        "device_authorization_endpoint",
    ):
        assert absent not in doc
    mine = (await client.get(MY_DOMAIN + "/.well-known/openid-configuration")).json()
    assert mine["issuer"] == MY_DOMAIN
    keys = (await client.get("/id/keys")).json()["keys"]
    assert all({"kty", "n", "e", "alg", "use", "kid"} <= set(k) for k in keys)
    cfg = await client.get(MY_DOMAIN + "/.well-known/auth-configuration")
    assert cfg.headers["access-control-allow-origin"] == "*"
    assert cfg.json()["OrgId"] == DEFAULT_ORG_ID[:15]
    assert (
        await client.get("/.well-known/oauth-authorization-server")
    ).status_code == 404


async def test_rest_stub(emu: SalesforceEmulator, client: httpx.AsyncClient) -> None:
    tokens = emu.issue_tokens()
    h = bearer(tokens["access_token"])
    versions = (await client.get(MY_DOMAIN + "/services/data/", headers=h)).json()
    assert {"label", "url", "version"} <= set(versions[0])
    assert (
        "limits"
        in (await client.get(MY_DOMAIN + "/services/data/v62.0/", headers=h)).json()
    )
    assert (
        "DailyApiRequests"
        in (
            await client.get(MY_DOMAIN + "/services/data/v62.0/limits", headers=h)
        ).json()
    )
    q = (
        await client.get(
            MY_DOMAIN + "/services/data/v62.0/query",
            params={"q": "SELECT Id, Name FROM Account"},
            headers=h,
        )
    ).json()
    assert q["done"] is True and q["totalSize"] == len(q["records"]) > 0
    unauth = await client.get(MY_DOMAIN + "/services/data/v62.0/")
    assert unauth.status_code == 401 and unauth.json() == INVALID
    no_api = emu.issue_tokens(scopes="openid refresh_token")
    r = await client.get(
        MY_DOMAIN + "/services/data/v62.0/", headers=bearer(no_api["access_token"])
    )
    assert r.status_code == 401
    assert (
        r.json()[0]["message"] == "This session is not valid for use with the REST API"
    )


async def test_rest_bodies_are_compact_and_versions_are_public(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    # Salesforce's 401 body, byte for byte (reference 2.5).
    tokens = emu.issue_tokens()
    emu.expire_access_tokens()
    r = await client.get(
        MY_DOMAIN + "/services/data/v64.0/limits",
        headers=bearer(tokens["access_token"]),
    )
    assert r.status_code == 401
    assert r.text == (
        '[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]'
    )
    # The version list needs no session.
    r = await client.get(MY_DOMAIN + "/services/data/")
    assert r.status_code == 200
    assert {"label", "url", "version"} <= set(r.json()[0])
