"""SECURITY.md items 1-7 and 17-20 through the FastAPI router: the cases
``test_fastapi_router.py`` does not already prove.

The default 10-minute flow lifetime with the clock moved, value-free security events for
every refusal, racing callbacks on the Redis and SQLAlchemy pending-flow stores, ``next``
and ``iss`` over many generated inputs, private headers on every answer, a second org or
a case-variant Salesforce id, a disconnect that leaves everything else alone, and 422
bodies, warnings and DEBUG logs without secrets.
"""

import asyncio
import logging
import string
import time
import uuid
import warnings
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import anyio
import httpx
import pytest
from fastapi import Depends, Query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fastapi import (
    APP_ORIGIN,
    CALLBACK,
    SECRET_KEY,
    authorize,
    browser_login,
    header_user,
    make_api,
    make_sf,
    query,
)
from support.security_inputs import browser_target, near_miss_issuers, next_candidates

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_fastapi import ErrorCode, SalesforceSession
from sfoauth_fastapi.state import DEFAULT_FLOW_TTL

pytestmark = pytest.mark.anyio

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ORG_ID = "00DXX0000001abc2AA"
USER_ID = "005XX000001xyzQYAQ"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio and SQLAlchemy's async engine need asyncio


def private(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


def security_events(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sfoauth.security"]


def _test_browser(record: logging.LogRecord) -> bool:
    """httpx's line about a request of the test's own browser (to the app, or to the
    authorize page): the browser knows the code and state, sfoauth did not log them."""
    message = record.getMessage()
    return record.name == "httpx" and (
        APP_ORIGIN in message or "/services/oauth2/authorize" in message
    )


def logged_text(caplog: Any) -> str:
    return "\n".join(
        r.getMessage() + repr(r.args) for r in caplog.records if not _test_browser(r)
    )


def move_clock(monkeypatch: Any, seconds: float) -> None:
    """Move the clock of the pending-login records (the core's login transaction) and
    of the signed cookies (itsdangerous); the emulator's codes and ID tokens keep the
    real time."""
    import types

    import itsdangerous.timed

    import sfoauth_core.login.transaction

    real = time.time
    fake = types.SimpleNamespace(time=lambda: real() + seconds)
    monkeypatch.setattr(sfoauth_core.login.transaction, "time", fake)
    monkeypatch.setattr(itsdangerous.timed, "time", fake)


def redirected(path: str) -> str:
    """``path`` as Starlette's RedirectResponse writes it in ``Location``."""
    return quote(path, safe=":/%#?=@[]!$&'()*+,;")


def issued(emu: SalesforceEmulator) -> list[str]:
    with emu.state.lock:
        return [*emu.state.access_tokens, *emu.state.refresh_tokens]


NEXT_CANDIDATES = next_candidates("me")


def run(coro_fn: Any, *args: Any) -> Any:
    """Run one Hypothesis example on a fresh event loop (``@given`` tests are sync)."""
    return asyncio.run(coro_fn(*args))


# -- Item 1: state ---------------------------------------------------------------------
async def test_flow_expires_after_ten_minutes_by_default(
    emu, browser_factory, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    sf = make_sf(emu)
    assert sf.flow_ttl == DEFAULT_FLOW_TTL == 600
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    params = query(callback)
    caplog.clear()  # the test's own visit to Salesforce was logged by httpx
    move_clock(monkeypatch, 601)
    r = await browser.get(callback)
    assert r.status_code == 400 and r.json()["detail"] == ErrorCode.INVALID_STATE
    private(r)
    assert emu.calls() == 0 and len(sf.store) == 0
    events = security_events(caplog)
    assert len(events) == 1 and events[0].levelno == logging.WARNING
    text = logged_text(caplog) + r.text
    assert params["state"] not in text and params["code"] not in text


async def test_flow_is_still_good_just_before_ten_minutes(
    emu, browser_factory, monkeypatch
):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    move_clock(monkeypatch, 590)
    assert (await browser.get(callback)).status_code == 303
    assert emu.calls("authorization_code") == 1


async def _missing(browser, callback, factory, api):
    params = query(callback)
    return await browser.get(CALLBACK, params={"code": params["code"]})


async def _wrong(browser, callback, factory, api):
    params = query(callback)
    params["state"] = params["state"][:-2] + "xy"
    return await browser.get(CALLBACK, params=params)


async def _replayed(browser, callback, factory, api):
    cookie = browser.cookies["sfoauth_flow"]
    assert (await browser.get(callback)).status_code == 303
    browser.cookies.set("sfoauth_flow", cookie)
    return await browser.get(callback)


async def _foreign(browser, callback, factory, api):
    victim = factory(api, **{"x-user": "victim"})
    await victim.post("/salesforce/login")
    return await victim.get(callback)


async def _other_user(browser, callback, factory, api):
    return await browser.get(callback, headers={"x-user": "mallory"})


async def _no_cookie(browser, callback, factory, api):
    browser.cookies.delete("sfoauth_flow")
    return await browser.get(callback)


@pytest.mark.parametrize(
    "forge",
    [_missing, _wrong, _replayed, _foreign, _other_user, _no_cookie],
    ids=["missing", "wrong", "replayed", "foreign", "other-user", "no-cookie"],
)
async def test_every_refused_state_is_a_400_and_a_security_event_without_values(
    emu, browser_factory, caplog, forge
):
    caplog.set_level(logging.DEBUG)
    sf = make_sf(emu, user_key=header_user)
    api = make_api(sf)
    browser = browser_factory(api, **{"x-user": "alice"})
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    params = query(callback)
    caplog.clear()
    r = await forge(browser, callback, browser_factory, api)
    assert r.status_code == 400
    assert r.json()["detail"] in (ErrorCode.INVALID_STATE, ErrorCode.INVALID_CALLBACK)
    private(r)
    expected_exchanges = 1 if forge is _replayed else 0
    assert emu.calls("authorization_code") == expected_exchanges
    assert len(sf.store) == expected_exchanges
    events = security_events(caplog)
    assert events and all(e.levelno == logging.WARNING for e in events)
    assert "sfoauth callback rejected" in events[-1].getMessage()
    text = logged_text(caplog) + r.text
    assert params["state"] not in text and params["code"] not in text
    assert "location" not in r.headers


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
async def test_racing_callbacks_on_shared_pending_flow_stores(
    emu, browser_factory, request, tmp_path, kind
):
    """Two workers share the pending-flow store; one flow, many callbacks at once."""
    cipher = TokenCipher([TokenCipher.generate_key()])
    cleanup: list[Any] = []
    if kind == "redis":
        from redis.asyncio import Redis

        from sfoauth_core.storage import AsyncRedisTokenStore

        url = request.getfixturevalue("redis_url")
        prefix = f"sfotest:{uuid.uuid4().hex}:"
        clients = [Redis.from_url(url), Redis.from_url(url)]
        stores = [AsyncRedisTokenStore(c, cipher, prefix=prefix) for c in clients]

        async def close() -> None:
            async for name in clients[0].scan_iter(match=prefix + "*"):
                await clients[0].delete(name)
            for c in clients:
                await c.aclose()

        cleanup.append(close)
    else:
        from sqlalchemy.ext.asyncio import create_async_engine

        from sfoauth_fastapi.storage import (
            SQLAlchemyTokenStore,
            build_tables,
            create_tables,
            drop_tables,
        )

        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
        else:
            dsn = request.getfixturevalue("postgres_dsn")
            url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        engines = [create_async_engine(url), create_async_engine(url)]
        tables = build_tables(prefix=f"t{uuid.uuid4().hex[:10]}_")
        await create_tables(engines[0], tables)
        stores = [SQLAlchemyTokenStore(e, cipher, tables=tables) for e in engines]

        async def close() -> None:
            await drop_tables(engines[0], tables)
            for e in engines:
                await e.dispose()

        cleanup.append(close)
    try:
        workers = [make_sf(emu, store=s, user_key=header_user) for s in stores]
        browsers = [
            browser_factory(make_api(sf), **{"x-user": "alice"}) for sf in workers
        ]
        callback = await authorize(emu, await browsers[0].post("/salesforce/login"))
        browsers[1].cookies.update(browsers[0].cookies)
        statuses: list[int] = []

        async def hit(browser: httpx.AsyncClient) -> None:
            statuses.append((await browser.get(callback)).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(hit, browsers[i % 2])
        assert sorted(statuses) == [303] + [400] * 9
        assert emu.calls("authorization_code") == 1
    finally:
        for close in cleanup:
            await close()


# -- Item 2 --------------------------------------------------------------------------------
async def test_verifier_never_in_urls_logs_or_cookies(emu, browser_factory, caplog):
    caplog.set_level(logging.DEBUG)
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    logins = [await browser.post("/salesforce/login") for _ in range(3)]
    flows = list(sf.pending_flows._logins.values())
    assert len({f.code_verifier for f in flows}) == 3  # one per pending flow
    callback = await authorize(emu, logins[-1])
    await browser.get(callback)
    seen = logged_text(caplog) + " ".join(
        r.headers.get("location", "") + " ".join(r.headers.get_list("set-cookie"))
        for r in logins
    )
    seen += " ".join(c.value or "" for c in browser.cookies.jar)
    for flow in flows:
        assert flow.code_verifier not in seen


# -- Item 3 --------------------------------------------------------------------------------
@HYPOTHESIS
@given(
    host=st.text(alphabet=string.ascii_lowercase + ".:-", min_size=1, max_size=20),
    proto=st.sampled_from(["http", "https", "ftp"]),
)
def test_redirect_uri_never_comes_from_request_headers(emu, host, proto):
    sf = make_sf(emu)

    async def login() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_api(sf)), base_url=APP_ORIGIN
        ) as browser:
            return await browser.post(
                "/salesforce/login",
                headers={
                    "host": host,
                    "x-forwarded-host": host,
                    "x-forwarded-proto": proto,
                    "forwarded": f"host={host};proto={proto}",
                },
            )

    r = run(login)
    assert query(r.headers["location"])["redirect_uri"] == CALLBACK


# -- Item 4 --------------------------------------------------------------------------------
@HYPOTHESIS
@given(candidate=NEXT_CANDIDATES)
def test_any_next_after_login_stays_on_this_site(emu, candidate):
    sf = make_sf(emu)

    async def flow() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_api(sf)), base_url=APP_ORIGIN
        ) as browser:
            return await browser_login(emu, browser, next_url=candidate)

    r = run(flow)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location in (redirected(candidate), "/")
    assert (
        urlsplit(browser_target(APP_ORIGIN, location)).netloc
        == urlsplit(APP_ORIGIN).netloc
    )
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


@HYPOTHESIS
@given(candidate=NEXT_CANDIDATES)
def test_any_next_after_disconnect_stays_on_this_site(emu, candidate):
    sf = make_sf(emu, user_key=header_user)

    async def disconnect() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_api(sf)),
            base_url=APP_ORIGIN,
            headers={"x-user": "alice"},
        ) as browser:
            return await browser.post(
                "/salesforce/disconnect", params={"next": candidate}
            )

    r = run(disconnect)
    assert r.status_code == 303
    private(r)
    location = r.headers["location"]
    assert location in (redirected(candidate), "/")
    assert (
        urlsplit(browser_target(APP_ORIGIN, location)).netloc
        == urlsplit(APP_ORIGIN).netloc
    )


@pytest.mark.parametrize(
    "next_url",
    [
        "/%2F%2Fevil.example",
        "/%5C%5Cevil.example",
        "%2F%2Fevil.example",
        "/\uff0f\uff0fevil.example",
        "/\u3002evil.example",
        "\\/\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
    ],
)
async def test_disguised_next_never_leaves_the_site(emu, browser_factory, next_url):
    browser = browser_factory(make_api(make_sf(emu)))
    r = await browser_login(emu, browser, next_url=next_url)
    location = r.headers["location"]
    for target in (location, quote(location, safe="/%")):
        assert (
            urlsplit(browser_target(APP_ORIGIN, target)).netloc
            == urlsplit(APP_ORIGIN).netloc
        )


# -- Item 5 --------------------------------------------------------------------------------
@HYPOTHESIS
@given(data=st.data())
def test_any_other_iss_is_refused_before_the_exchange(emu, data):
    sf = make_sf(emu)
    issuer = sf.app.login_url
    iss = data.draw(near_miss_issuers(issuer))
    before = emu.calls("authorization_code")

    async def flow() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_api(sf)), base_url=APP_ORIGIN
        ) as browser:
            callback = await authorize(emu, await browser.post("/salesforce/login"))
            return await browser.get(callback + "&iss=" + quote(iss, safe=""))

    r = run(flow)
    if iss == issuer.rstrip("/"):
        assert r.status_code == 303
        return
    assert r.status_code == 400
    private(r)
    assert emu.calls("authorization_code") == before


# -- Item 6 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, params",
    [
        ("/salesforce/login", {}),
        ("/salesforce/login", {"prompt": "bogus"}),
        ("/salesforce/login", {"scope": "full"}),
        ("/salesforce/callback", {}),
        ("/salesforce/callback", {"code": "c", "state": "s"}),
        ("/salesforce/callback", {"error": "access_denied", "state": "s"}),
        ("/salesforce/callback", {"code": "C" * 5000}),
    ],
)
async def test_every_login_and_callback_answer_is_private(
    emu, browser_factory, path, params
):
    browser = browser_factory(make_api(make_sf(emu)))
    private(await browser.get(path, params=params))


async def test_callback_location_never_carries_code_or_state(emu, browser_factory):
    browser = browser_factory(make_api(make_sf(emu)))
    login = await browser.post("/salesforce/login", params={"next": "/me?tab=1"})
    callback = await authorize(emu, login)
    params = query(callback)
    r = await browser.get(callback)
    assert r.status_code == 303
    private(r)
    assert r.headers["location"] == "/me?tab=1"
    for value in (params["code"], params["state"], quote(params["code"], safe="")):
        assert value not in r.headers["location"]


# -- Item 7 --------------------------------------------------------------------------------
async def test_another_org_never_overwrites_a_connection(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    assert (await browser_login(emu, browser)).status_code == 303
    before = await sf.store.get("user:alice")
    emu.add_org("globex", org_id="00DXX0000002glb")
    emu.add_user(
        "jo@globex.com", "pw-12345678", user_id="005XX000003jo0Q", org="globex"
    )
    emu.auto_approve = "jo@globex.com"
    r = await browser_login(emu, browser)
    assert r.status_code == 409 and r.json()["detail"] == ErrorCode.CONNECTION_CONFLICT
    private(r)
    assert await sf.store.get("user:alice") == before
    with emu.state.lock:
        jos = [
            t
            for t in emu.state.refresh_tokens.values()
            if t.username == "jo@globex.com"
        ]
    assert len(jos) == 1 and jos[0].status == "revoked"  # the refused grant is returned


# -- Item 18 -------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["org_id", "user_id"])
async def test_ids_compare_case_sensitively(emu, browser_factory, field):
    sf = make_sf(emu, user_key=header_user)
    ids = {"org_id": ORG_ID, "user_id": USER_ID}
    ids[field] = ids[field].swapcase()
    look_alike = Token(
        access_token="00D!look-alike-access",
        refresh_token="5Aep-look-alike-refresh",
        instance_url=emu.org.my_domain_url,
        **ids,
    )
    record = await sf.manager.save("user:alice", look_alike, revoke_superseded=False)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    r = await browser_login(emu, browser)
    assert r.status_code == 409
    assert await sf.store.get("user:alice") == record


# -- Item 19 -------------------------------------------------------------------------------
async def test_disconnect_touches_nothing_but_the_connection(emu, browser_factory):
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request

    sf = make_sf(emu, user_key=header_user)
    api = make_api(sf)

    @api.get("/cart")
    async def cart(request: Request) -> Any:
        request.session.setdefault("cart", ["book"])
        return request.session["cart"]

    api.add_middleware(SessionMiddleware, secret_key="app-session-secret")
    alice = browser_factory(api, **{"x-user": "alice"})
    bob = browser_factory(api, **{"x-user": "bob"})
    await alice.get("/cart")
    await browser_login(emu, alice)
    emu.add_user("bob@acme.com", "pw-12345678", user_id="005XX000001bobQ")
    emu.auto_approve = "bob@acme.com"
    await browser_login(emu, bob)
    bobs = await sf.store.get("user:bob")
    r = await alice.post("/salesforce/disconnect")
    assert r.status_code == 204
    private(r)
    assert await sf.store.get("user:alice") is None
    assert await sf.store.get("user:bob") == bobs
    assert (await bob.get("/me")).json()["status"] == 200
    assert (await alice.get("/cart")).json() == ["book"]
    (revoke,) = [e for e in emu.request_log if e.path.endswith("/revoke")]
    assert revoke.method == "POST"


# -- Item 20 -------------------------------------------------------------------------------
async def test_422_bodies_of_app_routes_never_echo_secrets(emu, browser_factory):
    sf = make_sf(emu)
    api = make_api(sf)

    @api.get("/report")
    async def report(
        session: Annotated[SalesforceSession, Depends(sf.session)],
        year: int = Query(...),
    ) -> Any:
        return {"year": year}  # pragma: no cover - never valid below

    browser = browser_factory(api)
    callback = await authorize(emu, await browser.post("/salesforce/login"))
    code = query(callback)["code"]
    await browser.get(callback)
    r = await browser.get("/report", params={"year": code})
    assert r.status_code == 422
    cookies = [c.value or "" for c in browser.cookies.jar]
    for value in [*issued(emu), SECRET_KEY, *cookies]:
        assert value and value not in r.text


async def test_no_secret_in_debug_logs_or_warnings(emu, browser_factory, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf), **{"x-user": "alice"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        login = await browser.post("/salesforce/login")
        callback = await authorize(emu, login)
        caplog.clear()  # the test's own visit to Salesforce was logged by httpx
        await browser.get(callback)
        emu.expire_access_tokens()
        assert (await browser.get("/me")).json()["status"] == 200
        await browser.get(callback)  # replay: refused and logged
        await browser.post("/salesforce/disconnect")
    params = query(callback)
    secrets_ = [
        *issued(emu),
        params["code"],
        params["state"],
        SECRET_KEY,
        emu.apps["web"].client_secret,
    ]
    text = logged_text(caplog) + "\n".join(str(w.message) for w in caught)
    assert any(r.name == "httpx" for r in caplog.records)
    assert any(r.name == "sfoauth.security" for r in caplog.records)
    for secret in secrets_:
        assert secret and secret not in text
