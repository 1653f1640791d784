"""The Django journey (issue 10): one person's first hour with sfoauth_django, in real
processes: ``sfoauth emulator``, the project in ``django_site/`` under WSGI
(``runserver``) and under ASGI (uvicorn), Chromium.

login → API (sync, async) → expire → API (sync) → expire again inside the cache
lifetime → API (async: its cached token predates both expiries; then sync) → expire →
identity → expire → async API (a refresh on another event loop) →
emulator stopped → 503 page → emulator back with every grant forgotten → pages still
render, reconnect message → reconnect → Salesforce failing after retries → 503 page →
Salesforce back → disconnect → no silent reconnect. Each step checks what the person
sees and the exact number of token-endpoint calls (the emulator's control API).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from support.browser import Browser
from support.journeys import (
    APP_USER,
    REASON_DISCONNECTED,
    REASON_RENEW,
    SANDBOX_USERNAME,
    Journey,
    Services,
    api_page_works,
    salesforce_login,
    start_django,
    wait_seconds,
)

from sfoauth_core.testing import DEFAULT_USERNAME

pytestmark = [pytest.mark.journey, pytest.mark.browser, pytest.mark.loopback]


@pytest.mark.parametrize("server", ["wsgi", "asgi"])
def test_django_journey(
    browser: Browser, services: Services, tmp_path: Path, server: str
) -> None:
    emulator, app_url = start_django(services, tmp_path, server)
    journey = Journey(browser, emulator, app_url, "/salesforce/login/")
    page = browser.page
    sync, async_ = "/api/sync/", "/api/async/"

    with journey.step("anonymous: the app's login, then the Connect page, next kept"):
        journey.goto(sync)
        assert journey.path().startswith("/accounts/login/"), journey.path()
        page.locator("#id_username").fill(APP_USER[0])
        page.locator("#id_password").fill(APP_USER[1])
        journey.click("#login-button")
        journey.expect_interstitial(sync)
        assert emulator.calls() == {}  # nothing happens without the click

    with journey.step("connect: one click, Salesforce login, back on the page"):
        journey.connect(sync)
        api_page_works(journey, sync)
        assert emulator.calls() == {"authorization_code": 1}

    with journey.step("async page: same connection, no token call"):
        api_page_works(journey, async_)
        assert emulator.calls() == {"authorization_code": 1}

    with journey.step("expire, sync page: one refresh"):
        emulator.expire()
        api_page_works(journey, sync)
        assert journey.new_refreshes() == 1

    with journey.step(
        "expire again inside the cache lifetime: the async page, whose cached token "
        "is the one from before the first expiry, refreshes once"
    ):
        emulator.expire()
        api_page_works(journey, async_)
        assert journey.new_refreshes() == 1

    with journey.step("sync page: its cached token was replaced, re-read, no refresh"):
        api_page_works(journey, sync)
        api_page_works(journey, async_)
        assert journey.new_refreshes() == 0

    with journey.step("expire, identity page refreshes once"):
        emulator.expire()
        journey.goto("/identity/")
        assert journey.text_of("#username") == DEFAULT_USERNAME
        assert journey.new_refreshes() == 1

    for loop in ("another", "a third"):
        # Under WSGI each async view runs on a new event loop (asgiref): the async
        # token client must not outlive its loop (issue 10 item 2).
        with journey.step(f"expire, async page refreshes on {loop} event loop"):
            emulator.expire()
            api_page_works(journey, async_)
            assert journey.new_refreshes() == 1
            api_page_works(journey, sync)
            assert journey.new_refreshes() == 1

    with journey.step("emulator stopped: a 503 page, the home page still renders"):
        emulator.stop()
        journey.expect_unavailable(sync)
        journey.goto("/")

    with journey.step("emulator back, every grant unknown: the home page renders"):
        emulator.start()
        journey.goto("/")

    with journey.step("decorated page: the refresh is refused once, reconnect message"):
        journey.goto(sync)
        journey.expect_interstitial(sync, REASON_RENEW)
        assert emulator.calls() == {"refresh_token": 1}  # refused once, not retried

    with journey.step("after the refusal: pages reading request.salesforce render"):
        journey.goto("/")
        assert page.locator("#not-connected").is_visible(), journey.text()
        journey.goto(async_)
        journey.expect_interstitial(async_)
        assert emulator.calls() == {"refresh_token": 1}

    with journey.step("reconnect"):
        journey.goto(sync)
        journey.connect(sync)
        api_page_works(journey, sync)
        assert emulator.calls() == {"refresh_token": 1, "authorization_code": 1}

    with journey.step("Salesforce failing after retries: a 503 page, then back"):
        emulator.expire()
        emulator.fail_token_endpoint()
        journey.expect_unavailable(sync)
        emulator.clear_faults()
        failed = emulator.refreshes()
        api_page_works(journey, sync)
        assert emulator.refreshes() == failed + 1

    with journey.step("disconnect"):
        journey.goto("/")
        journey.click("#disconnect-button")
        assert page.locator("#not-connected").is_visible(), journey.text()
        assert "/services/oauth2/revoke" in emulator.paths()
        assert journey.new_refreshes() == 0

    with journey.step("after disconnect: no silent reconnect"):
        before = emulator.calls()
        journey.goto(sync)
        journey.expect_interstitial(sync, REASON_DISCONNECTED)
        wait_seconds(1.0)
        journey.expect_interstitial(sync, REASON_DISCONNECTED)
        assert emulator.calls() == before
    journey.finish()


def test_django_sandbox_journey(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    """Issue 11.2: a login at the sandbox (``?domain=sandbox``, the emulator's
    test.salesforce.com on ``localhost``) through an app configured for production
    keeps working after its first refresh; refreshes and the disconnect go to the
    sandbox, which alone knows the grant."""
    emulator, app_url = start_django(services, tmp_path, "wsgi")
    journey = Journey(browser, emulator, app_url, "/salesforce/login/")
    page = browser.page
    sync = "/api/sync/"
    sandbox = f"localhost:{emulator.port}"
    token_path = "/services/oauth2/token"

    with journey.step("app login, then the Connect page for the sandbox"):
        start = f"/salesforce/login/?next={sync}&domain=sandbox"
        journey.goto("/accounts/login/?next=" + quote(start))
        page.locator("#id_username").fill(APP_USER[0])
        page.locator("#id_password").fill(APP_USER[1])
        journey.click("#login-button")
        journey.expect_interstitial(sync)
        assert emulator.calls() == {}

    with journey.step("connect at the sandbox, as its user"):
        journey.connect(sync, sandbox=True)
        api_page_works(journey, sync)
        assert emulator.hosts(token_path) == [sandbox]

    with journey.step("expire: the refresh goes to the sandbox, the page works"):
        emulator.expire()
        api_page_works(journey, sync)
        assert journey.new_refreshes() == 1
        assert emulator.hosts(token_path, "refresh_token") == [sandbox]

    with journey.step("expire, identity page: the sandbox user, refreshed there"):
        emulator.expire()
        journey.goto("/identity/")
        assert journey.text_of("#username") == SANDBOX_USERNAME
        assert emulator.hosts(token_path, "refresh_token") == [sandbox] * 2

    with journey.step("disconnect: revoked at the sandbox"):
        journey.goto("/")
        journey.click("#disconnect-button")
        assert page.locator("#not-connected").is_visible(), journey.text()
        assert emulator.hosts("/services/oauth2/revoke") == [sandbox]
        assert journey.new_refreshes() == 0
    journey.finish()


def test_django_journey_app_access_refused(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    """Issue 12 item 3: Salesforce refuses the app for this user (the External Client
    App is not installed in the user's org, answered at the code exchange): the person
    lands on the error page that says what their Salesforce admin must change, and
    connects once the admin installed the app."""
    emulator, app_url = start_django(services, tmp_path, "wsgi")
    journey = Journey(browser, emulator, app_url, "/salesforce/login/")
    page = browser.page
    sync = "/api/sync/"
    with journey.step("anonymous: the app's login, then the Connect page"):
        journey.goto(sync)
        page.locator("#id_username").fill(APP_USER[0])
        page.locator("#id_password").fill(APP_USER[1])
        journey.click("#login-button")
        journey.expect_interstitial(sync)

    with journey.step("the ECA is not installed in the org: a page that says so"):
        emulator.control(
            "PATCH",
            "apps/web",
            json={"kind": "external_client_app", "installed": False},
        )
        page.get_by_role("button", name="Continue to Salesforce", exact=True).click()
        salesforce_login(journey.browser, emulator)
        page.wait_for_load_state()
        assert page.title() == "Salesforce refused access to this app", journey.text()
        hint = journey.text_of(".sfoauth-hint") or ""
        assert "install" in hint and "External Client App" in hint, journey.text()
        assert "Traceback" not in page.content()
        assert emulator.calls() == {"authorization_code": 1}

    with journey.step("the admin installed it: try again, connected"):
        emulator.control("PATCH", "apps/web", json={"installed": True})
        journey.click(".sfoauth-back")  # "Try again": the Connect page
        assert journey.path().startswith("/salesforce/login/"), journey.path()
        # Salesforce still knows the browser and its consent: straight back.
        page.get_by_role("button", name="Continue to Salesforce", exact=True).click()
        page.wait_for_load_state()
        assert not page.url.startswith(emulator.url), page.url
        api_page_works(journey, sync)
        assert emulator.calls() == {"authorization_code": 2}
    journey.finish()
