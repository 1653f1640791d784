"""Routes and error paths of sfoauth_fastapi through ASGI, against the emulator.

SECURITY.md items 1-7 (state, PKCE, redirect_uri, next, mix-up, headers, no silent
linking), 18-20 (keys, revoke on disconnect/reconnect, secrets nowhere) and 28.
"""

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from starlette.requests import Request
from support.fastapi import (
    CALLBACK,
    SECRET_KEY,
    authorize,
    browser_login,
    header_user,
    make_api,
    make_sf,
    query,
)

from sfoauth_core.storage import AsyncInMemoryTokenStore
from sfoauth_core.testing import Fault
from sfoauth_fastapi import ErrorCode, PendingFlow, SFOAuthConfigurationError

pytestmark = pytest.mark.anyio


def detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


async def stored_secrets(sf: Any, key: str) -> list[str]:
    record = await sf.store.get(key)
    assert record is not None
    token = record.token
    return [v for v in (token.access_token, token.refresh_token, token.id_token) if v]


# Login ------------------------------------------------------------------------------
async def test_login_redirects_with_pkce_and_server_side_state(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    r = await browser.post(
        "/salesforce/login",
        headers={"host": "evil.example", "x-forwarded-host": "evil.example"},
    )
    assert r.status_code == 303
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    params = query(r.headers["location"])
    assert r.headers["location"].startswith(emu.org.my_domain_url + "/services/oauth2/")
    # Item 3: the configured redirect_uri, whatever the Host headers say.
    assert params["redirect_uri"] == CALLBACK
    assert len(params["state"]) >= 22  # >= 128 bits of urlsafe base64
    assert len(params["code_challenge"]) == 43
    assert "code_verifier" not in params
    cookie = r.headers.get_list("set-cookie")
    flow_cookie = next(c for c in cookie if c.startswith("sfoauth_flow="))
    assert "HttpOnly" in flow_cookie and "SameSite=lax" in flow_cookie
    # The browser holds a signed flow id, never the state or verifier.
    assert params["state"] not in " ".join(cookie)
    (flow,) = sf.pending_flows._logins.values()
    assert flow.state == params["state"]
    assert flow.code_verifier not in r.headers["location"] + " ".join(cookie)


async def test_secure_cookies_use_host_prefix(emu, browser_factory):
    sf = make_sf(emu, cookie_secure=True)
    r = await browser_factory(make_api(sf)).post("/salesforce/login")
    cookies = " ".join(r.headers.get_list("set-cookie"))
    assert "__Host-sfoauth_flow=" in cookies and "Secure" in cookies


async def test_full_login_flow_and_session(emu, browser_factory, caplog):
    caplog.set_level(logging.DEBUG)
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    first = await browser.post("/salesforce/login")
    uid_before = browser.cookies.get("sfoauth_uid")
    callback = await authorize(emu, first)
    r = await browser.get(callback)
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    assert (
        "code=" not in r.headers["location"] and "state=" not in r.headers["location"]
    )
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    # Item 6: logging in rotates the identity cookie.
    uid_after = browser.cookies.get("sfoauth_uid")
    assert uid_after and uid_after != uid_before
    assert "sfoauth_flow" not in browser.cookies
    me = await browser.get("/me")
    assert me.json() == {
        "status": 200,
        "org": "00DXX0000001abc2AA",
        "user": "005XX000001xyzQYAQ",
    }
    assert emu.calls("authorization_code") == 1
    (key,) = [k for k in sf.store._records.keys()]
    assert key.startswith("user:anon:")
    secrets_ = await stored_secrets(sf, key)
    code = query(callback)["code"]
    # Item 20: nothing secret in logs, responses or reprs.
    for value in [*secrets_, code, SECRET_KEY, emu.apps["web"].client_secret]:
        assert value not in caplog.text
        assert value not in me.text + r.text
        assert value not in repr(sf) + repr(sf.manager) + repr(sf.signer)


async def test_session_identity_and_repr(emu, browser_factory):
    sf = make_sf(emu)
    api = make_api(sf)
    seen: dict[str, Any] = {}

    from typing import Annotated

    from fastapi import Depends

    from sfoauth_fastapi import SalesforceSession

    @api.get("/who")
    async def who(session: Annotated[SalesforceSession, Depends(sf.session)]) -> Any:
        identity = await session.identity()
        seen["repr"] = repr(session)
        seen["token"] = session.token.access_token
        return {"username": identity.username, "instance": session.instance_url}

    browser = browser_factory(api)
    await browser_login(emu, browser)
    r = await browser.get("/who")
    assert r.json() == {"username": "jane@acme.com", "instance": emu.org.my_domain_url}
    assert seen["token"] not in seen["repr"]


# Callback refusals (item 1) ---------------------------------------------------------
async def test_callback_without_pending_flow_is_refused(emu, browser_factory, caplog):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    r = await browser.get(
        "/salesforce/callback", params={"code": "abc==", "state": "x"}
    )
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert r.headers["cache-control"] == "no-store"
    assert emu.calls() == 0
    assert "sfoauth callback rejected" in caplog.text and "abc==" not in caplog.text


async def test_wrong_state_is_refused_without_exchange(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    forged = callback.replace("state=", "state=X")
    r = await browser.get(forged)
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 0 and len(sf.store) == 0
    # A forged state names no login of this browser, so it cannot spoil the real
    # one; that one is still single use.
    r = await browser.get(callback)
    assert r.status_code == 303 and emu.calls() == 1
    r = await browser.get(callback)
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 1


async def test_replayed_callback_is_refused(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    login = await browser.post("/salesforce/login")
    flow_cookie = browser.cookies["sfoauth_flow"]
    callback = await authorize(emu, login)
    assert (await browser.get(callback)).status_code == 303
    browser.cookies.set("sfoauth_flow", flow_cookie)
    r = await browser.get(callback)
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls("authorization_code") == 1


async def test_foreign_state_from_another_browser_is_refused(emu, browser_factory):
    sf = make_sf(emu)
    api = make_api(sf)
    attacker, victim = browser_factory(api), browser_factory(api)
    callback = await authorize(emu, await attacker.post("/salesforce/login"))
    await victim.post("/salesforce/login")  # the victim has a flow of their own
    r = await victim.get(callback)
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 0


async def test_flow_started_by_another_user_is_refused(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    api = make_api(sf)
    browser = browser_factory(api)
    login = await browser.post("/salesforce/login", headers={"x-user": "alice"})
    callback = await authorize(emu, login)
    r = await browser.get(callback, headers={"x-user": "mallory"})
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 0


async def test_expired_flow_is_refused(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    await browser.post("/salesforce/login")
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    uid = await sf.identity(
        Request({"type": "http", "headers": [(b"cookie", cookie.encode())]})
    )
    flow = PendingFlow(
        state="s" * 43, code_verifier="v" * 64, user=uid, expires_at=time.time() - 1
    )
    await sf.pending_flows.put("expired-flow", flow)
    browser.cookies.set("sfoauth_flow", sf.signer.sign("flow", "expired-flow"))
    r = await browser.get(
        "/salesforce/callback", params={"code": "c==", "state": "s" * 43}
    )
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 0


async def test_tampered_or_old_flow_cookie_is_refused(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    good = browser.cookies["sfoauth_flow"]
    flow_id = sf.signer.unsign("flow", good, max_age=600)
    for bad in (
        good[:-2] + "AA",
        sf.signer.sign("uid", flow_id),
        sf.signer.sign("flow", flow_id, now=time.time() - 3600),
    ):
        browser.cookies.delete("sfoauth_flow")  # replace, not add a second one
        browser.cookies.set("sfoauth_flow", bad)
        r = await browser.get(callback)
        assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    assert emu.calls() == 0


async def test_racing_callbacks_make_one_exchange(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    statuses: list[int] = []

    async def hit() -> None:
        statuses.append((await browser.get(callback)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(hit)
    assert sorted(statuses) == [303] + [400] * 7
    assert emu.calls("authorization_code") == 1


async def test_access_denied_makes_no_exchange(emu, browser_factory):
    emu.auto_consent = "deny"
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    assert query(callback)["error"] == "access_denied"
    r = await browser.get(callback)
    assert r.status_code == 403 and detail(r) == ErrorCode.ACCESS_DENIED
    assert emu.calls() == 0 and len(sf.store) == 0


async def test_mixup_iss_must_match_recorded_issuer(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    r = await browser.get(callback + "&iss=https%3A%2F%2Fevil.example")
    assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_CALLBACK
    assert emu.calls() == 0


async def test_exchange_goes_to_recorded_issuer(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    # Callback parameters cannot redirect the exchange (item 5).
    r = await browser.get(callback + "&token_url=https%3A%2F%2Fevil.example%2Ftoken")
    assert r.status_code == 303
    (entry,) = [e for e in emu.request_log if e.grant_type == "authorization_code"]
    assert entry.host == "acme.my.salesforce.com"


async def test_invalid_code_maps_to_authorization_failed(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    params = {**query(callback), "code": "bogus"}
    r = await browser.get(CALLBACK, params=params)
    assert r.status_code == 400 and detail(r) == ErrorCode.AUTHORIZATION_FAILED
    assert len(sf.store) == 0


async def test_salesforce_down_during_exchange(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    emu.inject_fault(Fault(kind="status", status=503, count=5))
    r = await browser.get(callback)
    assert r.status_code == 503 and detail(r) == ErrorCode.SALESFORCE_UNAVAILABLE
    assert emu.calls("authorization_code") == 1  # a code exchange is never retried


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil",
        "javascript:alert(1)",
        "/%0d%0aSet-Cookie:x",
        " /x",
        "/x\n",
        "http:/x",
        "",
    ],
)
async def test_unsafe_next_ends_on_default(emu, browser_factory, next_url):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    r = await browser_login(emu, browser, next_url=next_url)
    location = r.headers["location"]
    assert location in ("/", "/%0d%0aSet-Cookie:x")
    assert not urlsplit(location).netloc


async def test_safe_next_survives(emu, browser_factory):
    browser = browser_factory(make_api(make_sf(emu)))
    r = await browser_login(emu, browser, next_url="/reports?id=1")
    assert r.headers["location"] == "/reports?id=1"


# Item 7 and 18-19 ---------------------------------------------------------------------
async def test_cross_site_login_asks_for_consent(emu, browser_factory):
    # Only reachable with login_on_get=True: by default a cross-site POST is refused.
    browser = browser_factory(make_api(make_sf(emu, login_on_get=True)))
    r = await browser.get("/salesforce/login", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 302
    assert query(r.headers["location"])["prompt"] == "consent"
    r = await browser.get(
        "/salesforce/login", headers={"sec-fetch-site": "same-origin"}
    )
    assert "prompt" not in query(r.headers["location"])


async def test_other_salesforce_user_never_overwrites_connection(emu, browser_factory):
    emu.add_user("bob@acme.com", "pw-Bob-12345", user_id="005XX000001bobQ")
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    assert (await browser_login(emu, browser)).status_code == 303
    before = await sf.store.get("user:alice")
    emu.auto_approve = "bob@acme.com"
    r = await browser_login(emu, browser)
    assert r.status_code == 409 and detail(r) == ErrorCode.CONNECTION_CONFLICT
    after = await sf.store.get("user:alice")
    assert after == before
    assert after.token.user_id == "005XX000001xyzQYAQ"


async def test_reconnect_revokes_superseded_grant(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    old = (await sf.store.get("user:alice")).token.refresh_token
    await browser_login(emu, browser)
    new = (await sf.store.get("user:alice")).token.refresh_token
    assert new != old
    revokes = [e for e in emu.request_log if e.path.endswith("/revoke")]
    assert len(revokes) == 1
    refresh = await sf.oauth.http_client.post(
        emu.org.my_domain_url + "/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": old,
            "client_id": sf.app.client_id,
            "client_secret": sf.app.client_secret.reveal(),
        },
    )
    assert refresh.status_code == 400


async def test_disconnect_revokes_and_deletes(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    r = await browser.post("/salesforce/disconnect")
    assert r.status_code == 204
    assert await sf.store.get("user:alice") is None
    assert [e.method for e in emu.request_log if e.path.endswith("/revoke")] == ["POST"]
    assert (await browser.get("/me")).status_code == 401


async def test_disconnect_deletes_even_if_revoke_fails(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    emu.inject_fault(
        Fault(kind="status", status=500, count=10, path="/services/oauth2/revoke")
    )
    r = await browser.post("/salesforce/disconnect", params={"next": "//evil.example"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert await sf.store.get("user:alice") is None


async def test_disconnect_refuses_cross_site_and_anonymous(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    r = await browser.post(
        "/salesforce/disconnect", headers={"sec-fetch-site": "cross-site"}
    )
    assert r.status_code == 403 and detail(r) == ErrorCode.CROSS_SITE_REQUEST
    r = await browser.post("/salesforce/disconnect", headers={"origin": "null"})
    assert r.status_code == 403
    r = await browser.post(
        "/salesforce/disconnect",
        headers={"origin": "null", "sec-fetch-site": "cross-site"},
    )
    assert r.status_code == 403
    r = await browser.post(
        "/salesforce/disconnect", headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 403 and detail(r) == ErrorCode.CROSS_SITE_REQUEST
    assert await sf.store.get("user:alice") is not None
    anon = browser_factory(make_api(sf))
    r = await anon.post("/salesforce/disconnect")
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_AUTHENTICATED
    r = await anon.post("/salesforce/login")
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_AUTHENTICATED


# Dependencies -----------------------------------------------------------------------
async def test_unconnected_session_401_or_redirect(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    r = await browser.get("/me", headers={"accept": "application/json"})
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_CONNECTED
    r = await browser.get("/me?x=1", headers={"accept": "text/html"})
    assert r.status_code == 303
    assert r.headers["location"] == "/salesforce/login?next=%2Fme%3Fx%3D1"
    assert (await browser.get("/maybe")).json() == {"connected": False}
    assert (await browser.get("/guarded")).status_code == 401
    only_401 = browser_factory(make_api(make_sf(emu, unauthenticated="401")))
    r = await only_401.get("/me", headers={"accept": "text/html"})
    assert r.status_code == 401


async def test_needs_reauth_is_401_and_optional_none(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    assert (await browser.get("/guarded")).status_code == 200
    await sf.store.mark_needs_reauth("user:alice", "invalid_grant")
    sf.manager.forget("user:alice")
    r = await browser.get("/me")
    assert r.status_code == 401 and detail(r) == ErrorCode.REAUTHORIZATION_REQUIRED
    assert (await browser.get("/maybe")).json() == {"connected": False}


async def test_revoked_grant_flags_connection(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    token = (await sf.store.get("user:alice")).token
    await sf.oauth.revoke(token.refresh_token)
    emu.expire_access_tokens()
    r = await browser.get("/me")
    assert r.status_code == 401 and detail(r) == ErrorCode.REAUTHORIZATION_REQUIRED
    record = await sf.store.get("user:alice")
    assert record is not None and record.needs_reauth


async def test_concurrent_requests_refresh_once(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    await browser_login(emu, browser)
    assert (await browser.get("/me")).json()["status"] == 200
    emu.expire_access_tokens()
    results: list[int] = []

    async def hit() -> None:
        results.append((await browser.get("/me")).json()["status"])

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(hit)
    assert results == [200] * 50
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0


async def test_connection_dependency_mints_once(emu, browser_factory, monkeypatch):
    from typing import Annotated

    from fastapi import Depends

    import sfoauth_core
    import sfoauth_core.config as config_module
    import sfoauth_fastapi
    from sfoauth_fastapi import SalesforceSession

    assert sfoauth_fastapi.Connection is sfoauth_core.Connection  # one vocabulary
    ops_app = emu.connected_app("jwt")
    sf = make_sf(emu, connections={"ops": ops_app})
    assert sf.connection("ops").manager.oauth.app is ops_app
    parses: list[object] = []
    real = config_module.load_pem_private_key
    monkeypatch.setattr(
        config_module,
        "load_pem_private_key",
        lambda *a, **k: parses.append(a) or real(*a, **k),
    )
    api = make_api(sf)

    @api.get("/ops")
    async def ops(
        session: Annotated[SalesforceSession, Depends(sf.connection("ops"))],
    ) -> Any:
        return {
            "status": (
                await session.client.get("/services/data/v62.0/limits")
            ).status_code
        }

    browser = browser_factory(api)
    statuses: list[int] = []

    async def hit() -> None:
        statuses.append((await browser.get("/ops")).json()["status"])

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(hit)
    assert statuses == [200] * 10
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1
    assert parses == []  # the connection's key was parsed once, before
    emu.expire_access_tokens()
    assert (await browser.get("/ops")).json()["status"] == 200
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 2


# Options and configuration ------------------------------------------------------------
async def test_per_request_scope_never_mutates_config(emu, browser_factory):
    sf = make_sf(emu)
    scopes = sf.app.scopes
    browser = browser_factory(make_api(sf))
    r = await browser.post(
        "/salesforce/login", params={"scope": "api", "prompt": "login"}
    )
    assert query(r.headers["location"])["scope"] == "api"
    assert sf.app.scopes == scopes
    for params in (
        {"scope": "full"},
        {"scope": " "},
        {"prompt": "bogus"},
        {"login_hint": "x" * 300},
        {"login_hint": "x" * 81},  # the core's limit, Django's too (a username: 80)
    ):
        r = await browser.post("/salesforce/login", params=params)
        assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_REQUEST
    assert sf.app.scopes == scopes
    hint = "j" * 71 + "@acme.com"  # 80 characters
    r = await browser.post("/salesforce/login", params={"login_hint": hint})
    assert r.status_code == 303 and query(r.headers["location"])["login_hint"] == hint


def test_both_adapters_share_the_core_next_rule():
    from sfoauth_core.login import safe_next
    from sfoauth_fastapi._urls import safe_next_path

    for candidate in ("/ok?x=1", "//evil.example", "/caf\u00e9", "/" + "a" * 2048):
        assert safe_next_path(candidate, "/home") == (safe_next(candidate) or "/home")


async def test_callback_never_answers_422_with_the_code(emu, browser_factory):
    browser = browser_factory(make_api(make_sf(emu)))
    for params in ({"code": ["a", "b"]}, {"state": "\x00"}, {"code": "C" * 5000}):
        r = await browser.get("/salesforce/callback", params=params)
        assert r.status_code == 400
        assert "CCCC" not in r.text


def test_configuration_errors_have_ids_and_hints(emu):
    config = emu.connected_app("web", redirect_uri=None)
    with pytest.raises(SFOAuthConfigurationError) as info:
        make_sf(emu, store=AsyncInMemoryTokenStore()).__class__(
            config,
            store=object(),
            secret_key="short-secret-value",
            unauthenticated="maybe",
            default_next="https://evil",  # type: ignore[arg-type]
            connections={"ops": emu.connected_app("web", client_secret=None)},
        )
    ids = sorted({i.id for i in info.value.issues})
    assert ids == [
        "sfoauth_fastapi.E002",
        "sfoauth_fastapi.E003",
        "sfoauth_fastapi.E004",
        "sfoauth_fastapi.E005",
        "sfoauth_fastapi.E008",
        "sfoauth_fastapi.E010",  # no redirect URI: its own id, not E001's
    ]
    assert "short-secret-value" not in str(info.value)
    assert all(i.hint for i in info.value.issues)
    with pytest.raises(SFOAuthConfigurationError, match="E002"):
        make_sf(emu).__class__(
            emu.connected_app("web"), store=AsyncInMemoryTokenStore(), secret_key=None
        )


async def test_openapi_renders_and_lifespan_closes(emu):
    from fastapi import FastAPI

    sf = make_sf(emu)
    api = FastAPI(lifespan=sf.lifespan)
    api.include_router(sf.router, prefix="/salesforce")
    schema = api.openapi()
    login = schema["paths"]["/salesforce/login"]["get"]
    assert "401" in login["responses"] and "400" in login["responses"]
    callback = schema["paths"]["/salesforce/callback"]["get"]
    names = {p["name"] for p in callback["parameters"]}
    assert names == {"code", "state", "error", "error_description", "iss"}
    assert api.url_path_for("sfoauth:disconnect") == "/salesforce/disconnect"
    async with sf.lifespan(api):
        pass
    assert sf.oauth.http_client.is_closed


async def test_on_login_hook_sync_and_async(emu, browser_factory):
    seen: list[str] = []

    def sync_hook(request: Any, session: Any) -> None:
        seen.append("sync:" + session.user_id)

    browser = browser_factory(make_api(make_sf(emu, on_login=sync_hook)))
    await browser_login(emu, browser)

    async def async_hook(request: Any, session: Any) -> None:
        seen.append("async:" + session.org_id)

    browser = browser_factory(make_api(make_sf(emu, on_login=async_hook)))
    await browser_login(emu, browser)
    assert seen == ["sync:005XX000001xyzQYAQ", "async:00DXX0000001abc2AA"]


def test_redaction_filter_masks_callback_query():
    from sfoauth_fastapi import RedactCallbackFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1",
            "GET",
            "/salesforce/callback?code=aPrx%3D%3D&state=abc",
            "1.1",
            303,
        ),
        None,
    )
    RedactCallbackFilter().filter(record)
    assert "aPrx" not in record.getMessage() and "abc" not in record.getMessage()
    assert "code=[redacted]" in record.getMessage()


async def test_works_alongside_session_middleware(emu, browser_factory):
    # sfoauth needs no SessionMiddleware, but an app that has one must keep both working:
    # its own session data survives the login, and no token lands in the session cookie.
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request

    sf = make_sf(emu)
    api = make_api(sf)

    @api.get("/visit")
    async def visit(request: Request) -> dict[str, int]:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return {"visits": request.session["visits"]}

    api.add_middleware(
        SessionMiddleware, secret_key="app-session-secret", https_only=False
    )
    browser = browser_factory(api)
    assert (await browser.get("/visit")).json() == {"visits": 1}
    r = await browser_login(emu, browser)
    assert r.status_code == 303
    assert (await browser.get("/me")).json()["status"] == 200
    assert (await browser.get("/visit")).json() == {"visits": 2}
    session_cookie = browser.cookies.get("session") or ""
    assert session_cookie
    issued = [*emu.state.access_tokens, *emu.state.refresh_tokens]
    assert issued
    for cookie in browser.cookies.jar:
        for value in issued:
            assert value not in (cookie.value or "")


def test_default_pool_has_the_cores_proxy_behaviour(emu, monkeypatch):
    """Issue 11.3: the pool SFOAuth builds when given no transport comes from the core's
    one builder, so the environment's proxy applies as in sfoauth_django."""
    import httpcore

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    from sfoauth_core.config import ConnectedApp
    from sfoauth_fastapi import SFOAuth

    app = ConnectedApp("3MVG9Example", redirect_uri="https://app.example.com/cb")
    sf = SFOAuth(app, store=AsyncInMemoryTokenStore(), secret_key="k" * 48)
    assert isinstance(sf.transport._pool, httpcore.AsyncHTTPProxy)
    anyio.run(sf.aclose)
