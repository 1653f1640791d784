"""Authorize endpoint: rendered errors vs redirects, login and consent forms."""

from __future__ import annotations

import re

import httpx
import pytest
from support.emulator import TOKEN, fragment_of, query_of, web_params

from sfoauth_core.testing import DEFAULT_PASSWORD, DEFAULT_USERNAME, SalesforceEmulator

pytestmark = pytest.mark.anyio

AUTH = "/services/oauth2/authorize"


def hidden_fields(html: str) -> dict[str, str]:
    return dict(
        re.findall(r"<input type='hidden' name='([^']*)' value='([^']*)'>", html)
    )


def params(emu: SalesforceEmulator, **extra: str) -> dict[str, str]:
    app = emu.apps["web"]
    return {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.callback_urls[0],
        **extra,
    }


async def test_client_and_redirect_errors_are_rendered(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.get(AUTH, params=params(emu, client_id="3MVG9Nope"))
    assert r.status_code == 400 and "location" not in r.headers
    assert (
        "error=invalid_client_id&error_description=client%20identifier%20invalid"
        in r.text
    )
    r = await client.get(
        AUTH, params=params(emu, redirect_uri="https://evil.example.com/cb")
    )
    assert "location" not in r.headers
    assert (
        "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
        in r.text
    )
    no_uri = params(emu)
    del no_uri["redirect_uri"]
    assert "error=redirect_uri_missing" in (await client.get(AUTH, params=no_uri)).text


async def test_other_errors_redirect_with_state(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.get(AUTH, params=params(emu, response_type="bogus", state="s"))
    assert r.status_code == 302
    assert query_of(r.headers["location"]) == {
        "error": "unsupported_response_type",
        "error_description": "response type not supported",
        "state": "s",
    }
    r = await client.get(AUTH, params=params(emu, scope="api not_a_scope", state="s"))
    assert query_of(r.headers["location"])["error"] == "invalid_scope"
    r = await client.get(
        AUTH, params=params(emu, response_type="token", immediate="true", state="s")
    )
    frag = fragment_of(r.headers["location"])
    assert frag["error"] == "immediate_unsuccessful" and frag["state"] == "s"


async def test_login_and_consent_forms(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.get(
        AUTH,
        params=params(emu, state="abc", login_hint=DEFAULT_USERNAME, display="touch"),
    )
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert f"value='{DEFAULT_USERNAME}'" in r.text
    hidden = hidden_fields(r.text)
    assert hidden["state"] == "abc"
    bad = await client.post(
        AUTH,
        data={
            **hidden,
            "username": DEFAULT_USERNAME,
            "password": "wrong",
            "_action": "login",
        },
    )
    assert "Please check your username and password" in bad.text
    consent = await client.post(
        AUTH,
        data={
            **hidden,
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "_action": "login",
        },
    )
    assert "Allow Access?" in consent.text
    allowed = await client.post(
        AUTH, data={**hidden_fields(consent.text), "_action": "allow"}
    )
    assert allowed.status_code == 302
    callback = query_of(allowed.headers["location"])
    assert callback["state"] == "abc" and callback["code"]
    # Second authorize: session cookie and approval remembered -> immediate redirect.
    again = await client.get(AUTH, params=params(emu, state="two", immediate="true"))
    assert again.status_code == 302 and "code" in query_of(again.headers["location"])
    # prompt=login shows the login page again; prompt=consent the consent page.
    assert "Log In" in (await client.get(AUTH, params=params(emu, prompt="login"))).text
    page = await client.get(AUTH, params=params(emu, prompt="consent", state="d"))
    assert "Allow Access?" in page.text
    denied = await client.post(
        AUTH, data={**hidden_fields(page.text), "_action": "deny"}
    )
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    # The code works at the token endpoint.
    data = web_params(emu, grant_type="authorization_code", code=callback["code"])
    assert (await client.post(TOKEN, data=data)).status_code == 200


async def test_scripted_user(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    r = await client.get(AUTH, params=params(emu, state="x"))
    assert "code" in query_of(r.headers["location"])
    emu.auto_consent = "deny"
    r = await client.get(AUTH, params=params(emu, state="x", prompt="consent"))
    assert query_of(r.headers["location"]) == {
        "error": "access_denied",
        "error_description": "end-user denied authorization",
        "state": "x",
    }
    emu.auto_consent = "allow"
    emu.auto_approve = "inactive@acme.com"
    r = await client.get(AUTH, params=params(emu))
    assert query_of(r.headers["location"])["error"] == "inactive_user"
    emu.auto_approve = DEFAULT_USERNAME
    emu.user.ip_restricted = True
    r = await client.get(AUTH, params=params(emu))
    assert (
        query_of(r.headers["location"])["error_description"]
        == "IP restricted or invalid login hours"
    )


async def test_user_agent_flow(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    r = await client.get(
        AUTH, params=params(emu, response_type="token", state="st", nonce="n")
    )
    frag = fragment_of(r.headers["location"])
    assert urlsplit_query_empty(r.headers["location"])
    assert (
        frag["state"] == "st"
        and frag["token_type"] == "Bearer"
        and frag["access_token"].startswith("00DXX0000001abc!")
    )
    assert "%21" in r.headers["location"]
    assert (
        "refresh_token" not in frag
    )  # https callback is not "safe" for refresh tokens
    assert "id_token" not in frag
    r = await client.get(AUTH, params=params(emu, response_type="token id_token"))
    assert "id_token" in fragment_of(r.headers["location"])
    emu.apps["web"].user_agent_refresh = "always"
    r = await client.get(AUTH, params=params(emu, response_type="token"))
    assert "refresh_token" in fragment_of(r.headers["location"])
    emu.org.user_agent_blocked = True
    r = await client.get(AUTH, params=params(emu, response_type="hybrid_token"))
    assert fragment_of(r.headers["location"])["error"] == "unsupported_response_type"


def urlsplit_query_empty(url: str) -> bool:
    return "?" not in url.split("#", 1)[0]


async def test_site_login_adds_community_fields(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    r = await client.get(
        "https://acme.my.site.com/customers" + AUTH, params=params(emu)
    )
    q = query_of(r.headers["location"])
    assert q["sfdc_community_url"] == "https://acme.my.site.com/customers"
    assert q["sfdc_community_id"] == emu.org.site_id
    data = web_params(emu, grant_type="authorization_code", code=q["code"])
    body = (
        await client.post("https://acme.my.site.com/customers" + TOKEN, data=data)
    ).json()
    assert body["id"].startswith("https://acme.my.site.com/customers/id/")
    assert body["sfdc_community_url"] == "https://acme.my.site.com/customers"


async def test_admin_approved_only(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    # Refused at the authorize redirect when the app says so (the default, as the
    # reference lists it, is the code exchange: tests/emulator/test_app_access.py).
    emu.apps["web"].permitted_users = "admin_approved"
    emu.apps["web"].app_access_stage = "authorize"
    emu.auto_approve = DEFAULT_USERNAME
    r = await client.get(AUTH, params=params(emu))
    assert query_of(r.headers["location"])["error"] == "invalid_app_access"


async def test_device_verification_page(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["device"]
    start = (
        await client.post(
            TOKEN, data={"response_type": "device_code", "client_id": app.client_id}
        )
    ).json()
    page = await client.get("/setup/connect")
    assert "user_code" in page.text
    done = await client.post(
        "/setup/connect",
        data={
            "user_code": start["user_code"].lower(),
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "_action": "allow",
        },
    )
    assert "connected" in done.text
    poll = {
        "grant_type": "device",
        "client_id": app.client_id,
        "code": start["device_code"],
    }
    assert (await client.post(TOKEN, data=poll)).status_code == 200
