"""What a new user of the FastAPI adapter hit in their first hour (issue 10), each
reproduced through ASGI against the emulator:

* item 11 / L1-L2: the login page asks for a click; a disconnect is never undone by a
  page view; the page says why the user is there;
* item 9: logins started in several tabs of one browser all complete (bounded);
* item 10 / L4: anonymous visitors go to the app's own login, codes keep their meaning;
* item 6 / L3: Salesforce unreachable or failing answers 503 (HTML or JSON), never 500;
* item 15: error pages with a fitting title and links; OpenAPI documents the 401/303
  answers of routes depending on ``sf.session``.
"""

# No `from __future__ import annotations`: routes below close over `sf`.

import logging
import re
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from support.fastapi import (
    APP_ORIGIN,
    authorize,
    browser_login,
    header_user,
    make_api,
    make_sf,
)

from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_fastapi import ErrorCode, SalesforceSession
from sfoauth_fastapi.state import MAX_PENDING_LOGINS

pytestmark = pytest.mark.anyio

HTML = {"accept": "text/html,application/xhtml+xml"}
JSON = {"accept": "application/json"}


def detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def h1(response: httpx.Response) -> str:
    match = re.search(r"<h1>([^<]*)</h1>", response.text)
    assert match is not None, response.text
    return match.group(1)


def pending(sf: Any) -> int:
    return len(sf.pending_flows)


# L1: the login page ------------------------------------------------------------------
async def test_login_get_shows_the_interstitial_and_starts_nothing(
    emu, browser_factory
):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    r = await browser.get("/salesforce/login", params={"next": "/me?x=1"}, headers=HTML)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<title>Connect to Salesforce</title>" in r.text
    assert h1(r) == "Connect to Salesforce"
    assert re.search(r'<form [^>]*method="post" action="/salesforce/login">', r.text), (
        r.text
    )
    assert ">Continue to Salesforce</button>" in r.text
    assert '<input type="hidden" name="next" value="/me?x=1">' in r.text
    # Never framed (a hidden overlay could click the button), never cached.
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert "location" not in r.headers and "sfoauth_flow" not in browser.cookies
    assert pending(sf) == 0 and emu.calls() == 0
    # An unsafe next never reaches the page.
    r = await browser.get("/salesforce/login", params={"next": "//evil.example"})
    assert '<input type="hidden" name="next" value="/">' in r.text
    assert "evil" not in r.text


async def test_the_login_page_escapes_what_the_link_carried(emu, browser_factory):
    browser = browser_factory(make_api(make_sf(emu)))
    r = await browser.get(
        "/salesforce/login",
        params={"next": '/a"><script>x</script>', "login_hint": "<b>jane</b>"},
        headers=HTML,
    )
    assert "<script>" not in r.text and "<b>" not in r.text
    assert 'value="/a&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in r.text
    assert 'name="login_hint" value="&lt;b&gt;jane&lt;/b&gt;"' in r.text


async def test_the_button_posts_and_cross_site_posts_are_refused(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    for headers in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},
    ):
        r = await browser.post(
            "/salesforce/login", data={"next": "/me"}, headers=headers
        )
        assert r.status_code == 403 and detail(r) == ErrorCode.CROSS_SITE_REQUEST
    assert pending(sf) == 0
    r = await browser.post(
        "/salesforce/login",
        data={"next": "/me"},
        headers={"origin": APP_ORIGIN, "sec-fetch-site": "same-origin"},
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith(emu.org.my_domain_url)
    assert pending(sf) == 1
    callback = await browser.get(await authorize(emu, r))
    assert callback.headers["location"] == "/me"


async def test_login_on_get_keeps_the_old_redirect(emu, browser_factory):
    sf = make_sf(emu, login_on_get=True)
    r = await browser_factory(make_api(sf)).get("/salesforce/login", headers=HTML)
    assert r.status_code == 302
    assert r.headers["location"].startswith(emu.org.my_domain_url)


async def test_after_disconnect_a_page_view_never_reconnects(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    await browser_login(emu, browser)
    assert (await browser.get("/me")).json()["status"] == 200
    r = await browser.post("/salesforce/disconnect")
    assert r.status_code == 204
    calls = emu.calls()
    # The next page view: to the login page, which says why and waits for a click.
    r = await browser.get("/me", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/salesforce/login?next=%2Fme"
    page = await browser.get(r.headers["location"], headers=HTML)
    assert page.status_code == 200 and h1(page) == "Connect to Salesforce"
    assert "You disconnected Salesforce." in page.text
    assert emu.calls() == calls and pending(sf) == 0  # no token call, no login
    assert (await browser.get("/me", headers=JSON)).status_code == 401
    # The click reconnects; the notice is gone afterwards.
    await browser_login(emu, browser)
    assert (await browser.get("/me")).json()["status"] == 200
    page = await browser.get("/salesforce/login", headers=HTML)
    assert "You disconnected Salesforce." not in page.text


async def test_a_browser_form_disconnect_lands_on_a_page(emu, browser_factory):
    """Found by a new-user trial: a plain HTML form posting to /disconnect got a 204,
    so the browser stayed on the form page and nothing visibly happened."""
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    await browser_login(emu, browser)
    r = await browser.post("/salesforce/disconnect", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # An API client (no text/html) still gets the 204 it is documented to get.
    await browser_login(emu, browser)
    assert (await browser.post("/salesforce/disconnect")).status_code == 204


async def test_a_refused_connection_is_explained_on_the_login_page(
    emu, browser_factory
):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    await browser_login(emu, browser)
    _revoke_all(emu)
    emu.expire_access_tokens()
    r = await browser.get("/me", headers=HTML)
    assert r.status_code == 303
    page = await browser.get(r.headers["location"], headers=HTML)
    assert "Your Salesforce connection needs to be renewed." in page.text
    assert "You disconnected" not in page.text


def _revoke_all(emu: SalesforceEmulator) -> None:
    with emu.state.lock:
        emu.state.refresh_tokens.clear()


# Item 9: several tabs ----------------------------------------------------------------
@pytest.mark.parametrize("own_auth", [False, True], ids=["cookie-identity", "user-key"])
async def test_logins_started_in_two_tabs_both_complete(emu, browser_factory, own_auth):
    sf = make_sf(emu, user_key=header_user) if own_auth else make_sf(emu)
    headers = {"x-user": "alice"} if own_auth else {}
    browser = browser_factory(make_api(sf), **headers)
    first = await browser.post("/salesforce/login", data={"next": "/me"})
    second = await browser.post("/salesforce/login", data={"next": "/maybe"})
    first_callback = await authorize(emu, first)
    second_callback = await authorize(emu, second)
    r = await browser.get(first_callback)
    assert (r.status_code, r.headers["location"]) == (303, "/me")
    r = await browser.get(second_callback)
    assert (r.status_code, r.headers["location"]) == (303, "/maybe")
    assert (await browser.get("/me")).json()["status"] == 200
    assert emu.calls("authorization_code") == 2
    assert "sfoauth_flow" not in browser.cookies  # both used: nothing pending


async def test_pending_logins_per_browser_are_bounded(emu, browser_factory):
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    logins = [
        await browser.post("/salesforce/login") for _ in range(MAX_PENDING_LOGINS + 2)
    ]
    callbacks = [await authorize(emu, login) for login in logins]
    for dropped in callbacks[:2]:
        r = await browser.get(dropped)
        assert r.status_code == 400 and detail(r) == ErrorCode.INVALID_STATE
    r = await browser.get(callbacks[-1])
    assert r.status_code == 303
    assert emu.calls("authorization_code") == 1


# Item 10 / L4: anonymous visitors ----------------------------------------------------
async def test_anonymous_visitors_get_not_authenticated(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user)
    browser = browser_factory(make_api(sf))
    r = await browser.get("/me", headers=JSON)
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_AUTHENTICATED
    # A browser: a page that says so (not a redirect to a login that cannot work).
    r = await browser.get("/me", headers=HTML)
    assert r.status_code == 401 and h1(r) == "Please sign in"
    r = await browser.get("/salesforce/login", headers=JSON)
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_AUTHENTICATED
    # A known user without a connection is NOT_CONNECTED, as documented.
    r = await browser.get("/me", headers={**JSON, "x-user": "alice"})
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_CONNECTED


async def test_anonymous_browsers_go_to_the_app_login(emu, browser_factory):
    sf = make_sf(emu, user_key=header_user, app_login_url="/login")
    browser = browser_factory(make_api(sf))
    r = await browser.get("/me?tab=2", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fme%3Ftab%3D2"
    r = await browser.get("/salesforce/login?next=/me", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fsalesforce%2Flogin%3Fnext%3D%2Fme"
    r = await browser.get("/me", headers=JSON)  # APIs keep the JSON 401
    assert r.status_code == 401 and detail(r) == ErrorCode.NOT_AUTHENTICATED
    # Signed in to the app: the Salesforce login page as usual.
    r = await browser.get("/me", headers={**HTML, "x-user": "alice"})
    assert r.headers["location"] == "/salesforce/login?next=%2Fme"


def test_app_login_url_is_checked(emu):
    from sfoauth_fastapi import SFOAuthConfigurationError

    with pytest.raises(SFOAuthConfigurationError, match="E009"):
        make_sf(emu, app_login_url="javascript:alert(1)")
    assert make_sf(emu, app_login_url="https://sso.example.com/login").app_login_url


# Item 6 / L3: Salesforce unavailable -------------------------------------------------
class Switch(httpx.AsyncBaseTransport):
    """The emulator's transport, or a refused connection for every request
    (``down = "/"``) or the OAuth endpoints only (``down = "/services/oauth2/"``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down: str | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down is not None and request.url.path.startswith(self.down):
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


def unavailable_api(emu: SalesforceEmulator) -> tuple[Any, Switch, FastAPI]:
    switch = Switch(emu.async_transport())
    sf = make_sf(emu, transport=switch, retry=RetryPolicy(attempts=1))
    api = make_api(sf)

    @api.get("/other")
    async def other() -> Any:
        async with httpx.AsyncClient(transport=switch) as client:
            await client.get("https://not-salesforce.example/")

    return sf, switch, api


async def test_salesforce_unreachable_answers_503_never_500(emu, browser_factory):
    _, switch, api = unavailable_api(emu)
    browser = browser_factory(api)
    await browser_login(emu, browser)
    switch.down = "/"
    # A call in the user's route (token still valid): httpx.ConnectError escapes it.
    r = await browser.get("/me", headers=JSON)
    assert r.status_code == 503
    assert r.json() == {"detail": "SFOAUTH_SALESFORCE_UNAVAILABLE"}
    assert r.headers["retry-after"] == "30"
    r = await browser.get("/me", headers=HTML)
    assert r.status_code == 503 and h1(r) == "Salesforce is unavailable"
    assert "<title>Salesforce is unavailable</title>" in r.text
    assert 'href="/me"' in r.text and 'href="/"' in r.text  # retry, back
    assert "Traceback" not in r.text and "ConnectError" not in r.text
    # The API answers but the token endpoint does not: the refresh inside the route
    # (a core TransportError) answers the same.
    switch.down = "/services/oauth2/"
    emu.expire_access_tokens()
    r = await browser.get("/me", headers=JSON)
    assert r.status_code == 503 and detail(r) == ErrorCode.SALESFORCE_UNAVAILABLE
    r = await browser.get("/me", headers=HTML)
    assert r.status_code == 503 and h1(r) == "Salesforce is unavailable"
    # The code exchange of a login too.
    switch.down = None
    login = await browser.post("/salesforce/login")
    callback = await authorize(emu, login)
    switch.down = "/"
    r = await browser.get(callback, headers=HTML)
    assert r.status_code == 503 and h1(r) == "Salesforce is unavailable"
    # Salesforce back: everything works again.
    switch.down = None
    assert (await browser.get("/me")).json()["status"] == 200


async def test_a_dependency_minting_while_salesforce_is_down_answers_503(
    emu, browser_factory
):
    switch = Switch(emu.async_transport())
    sf = make_sf(
        emu,
        transport=switch,
        retry=RetryPolicy(attempts=1),
        connections={"ops": emu.connected_app("jwt")},
    )
    api = make_api(sf)

    @api.get("/ops")
    async def ops(
        session: Annotated[SalesforceSession, Depends(sf.connection("ops"))],
    ) -> Any:
        return {"org": session.org_id}

    browser = browser_factory(api)
    switch.down = "/"
    r = await browser.get("/ops", headers=JSON)
    assert r.status_code == 503 and detail(r) == ErrorCode.SALESFORCE_UNAVAILABLE
    r = await browser.get("/ops", headers=HTML)
    assert r.status_code == 503 and h1(r) == "Salesforce is unavailable"
    assert r.headers["retry-after"] == "30"
    switch.down = None
    assert (await browser.get("/ops")).status_code == 200


async def test_other_network_errors_keep_their_usual_handling(emu):
    _, switch, api = unavailable_api(emu)
    switch.down = "/"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api, raise_app_exceptions=False),
        base_url=APP_ORIGIN,
    ) as client:
        r = await client.get("/other")
    assert r.status_code == 500  # not Salesforce: not sfoauth's to answer


# Item 15: error pages and OpenAPI ----------------------------------------------------
async def test_error_pages_fit_the_error(emu, browser_factory, caplog):
    caplog.set_level(logging.DEBUG)
    sf = make_sf(emu)
    browser = browser_factory(make_api(sf))
    login = await browser.post("/salesforce/login", data={"next": "/me"})
    callback = await authorize(emu, login)
    await browser.get(callback)
    r = await browser.get(callback, headers=HTML)  # replayed
    assert r.status_code == 400 and h1(r) == "This login has expired"
    assert 'id="sfoauth-action" href="/salesforce/login?next=' in r.text
    assert "callback" not in r.text and "state=" not in r.text
    r = await browser.post(
        "/salesforce/disconnect", headers={**HTML, "origin": "https://evil.example"}
    )
    assert r.status_code == 403 and h1(r) == "Request refused"
    assert 'href="/"' in r.text


async def test_openapi_documents_the_answers_of_session_routes(emu):
    sf = make_sf(emu)
    api = make_api(sf)

    @api.get("/plain")
    async def plain() -> Any:
        return {}

    @api.get("/nested")
    async def nested(
        s: Annotated[SalesforceSession, Depends(sf.session)],
    ) -> Any:
        return {}

    paths = api.openapi()["paths"]
    for path in ("/me", "/guarded", "/nested"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "303", "401", "503"} <= set(responses), (path, responses)
        examples = responses["401"]["content"]["application/json"]["examples"]
        assert {"NOT_AUTHENTICATED", "NOT_CONNECTED"} <= set(examples)
    assert set(paths["/plain"]["get"]["responses"]) == {"200"}
    assert set(paths["/maybe"]["get"]["responses"]) <= {"200", "422"}
    login = paths["/salesforce/login"]
    assert "200" in login["get"]["responses"] and "303" in login["post"]["responses"]


async def test_no_redirect_is_documented_when_sessions_only_answer_401(emu):
    sf = make_sf(emu, unauthenticated="401")
    paths = make_api(sf).openapi()["paths"]
    assert "303" not in paths["/me"]["get"]["responses"]
